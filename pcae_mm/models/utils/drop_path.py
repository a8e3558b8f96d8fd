"""Stochastic depth rates as Python floats, so ``torch.compile`` traces a ViT in one graph."""
from torch import nn


def float_drop_probs(module: nn.Module) -> nn.Module:
    """Store the probability of every ``DropPath`` in ``module`` as a Python float.

    mmpretrain's ``VisionTransformer`` hands its blocks ``np.linspace(0, rate, depth)`` values:
    numpy scalars. mmcv's ``drop_path`` starts with ``if drop_prob == 0. or not training``;
    TorchDynamo traces numpy scalars as tensors, so that test is data-dependent branching and
    breaks the graph twice per block (ViT-B: 24 graph breaks in the encoder, as many in an
    EMA teacher), in training and in eval mode alike. As floats the test is a constant.

    Returns:
        nn.Module: ``module``.
    """
    for m in module.modules():
        if type(m).__name__ == 'DropPath' and hasattr(m, 'drop_prob'):
            m.drop_prob = float(m.drop_prob)
    return module
