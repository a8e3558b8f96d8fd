"""PTR at fine-tuning / inference (PCAE Table 5): drop-ratio mapping, MACs and throughput.

PCAE reports, for a ViT-B/16 at 224 px fine-tuned with token drop, the "drop ratio" 0 .. 0.4
against GMACs and throughput. pcae_mm reproduces the MACs with **two drop points, after blocks
1 and 5 (0-based, i.e. after the 2nd and 6th block), each keeping ``1 - drop`` of the patch
tokens** (cls always kept, scored by dissimilarity to the mean token)::

    drop  keep/stage  patch tokens (blocks 0-1 / 2-5 / 6-11)  GMACs (paper)
    0.0   1.0         196 / 196 / 196                          17.57
    0.1   0.9         196 / 176 / 158                          15.34
    0.2   0.8         196 / 156 / 124                          13.19
    0.3   0.7         196 / 137 /  95                          11.29
    0.4   0.6         196 / 117 /  70                           9.53

i.e. the drop ratio is the share of tokens dropped at EACH of the two stages (total drop
``1 - (1 - d)**2``: 0, 19, 36, 51, 64%). The PCAE pre-training placement (after blocks 0, 4, 8)
with the same per-stage ratio gives 5-16% too few MACs; ``tools/analysis/ptr_flops.py`` prints
the counted figures for any placement.
"""
import copy
from typing import Dict, Optional, Sequence, Tuple

import torch

from .builder import (HookDriver, build_model, build_optim_wrapper, infer_img_size,
                      make_batch, make_train_step, num_classes_of)
from .flops import count_flops
from .timing import Progress, Timer, median

PTR_LOCATIONS = (1, 5)
DROP_RATIOS = (0.0, 0.1, 0.2, 0.3, 0.4)
# PCAE Table 5 (reported): drop ratio -> (throughput img/s, GMACs, top-1 %).
TABLE5 = {
    0.0: dict(throughput=286, gmacs=17.57, top1=83.8),
    0.1: dict(throughput=330, gmacs=15.34, top1=83.7),
    0.2: dict(throughput=385, gmacs=13.19, top1=83.5),
    0.3: dict(throughput=449, gmacs=11.29, top1=83.2),
    0.4: dict(throughput=538, gmacs=9.53, top1=82.6),
}


def ptr_token_reduction(drop_ratio: float,
                        locations: Sequence[int] = PTR_LOCATIONS) -> Optional[dict]:
    """Backbone ``token_reduction`` config for a Table 5 drop ratio.

    Args:
        drop_ratio (float): Share of patch tokens dropped at each stage, in [0, 1).
        locations (Sequence[int]): Blocks after which tokens are dropped. Defaults to (1, 5).

    Returns:
        dict | None: ``dict(locations=[...], keep_ratio=1 - drop_ratio)``, None for drop 0.
    """
    if not isinstance(drop_ratio, (int, float)) or not 0.0 <= drop_ratio < 1.0:
        raise ValueError(f'PTR drop ratio must be in [0, 1), got {drop_ratio!r}')
    if not locations:
        raise ValueError('PTR needs at least one drop location (block index)')
    if drop_ratio == 0:
        return None
    return dict(locations=[int(i) for i in locations], keep_ratio=round(1.0 - drop_ratio, 6))


def drop_ratio_of(token_reduction: Optional[dict]) -> float:
    """Inverse of :func:`ptr_token_reduction`: the per-stage drop ratio of a config."""
    if not token_reduction:
        return 0.0
    return round(1.0 - float(token_reduction.get('keep_ratio', 1.0)), 6)


def with_ptr(cfg, drop_ratio: float, locations: Sequence[int] = PTR_LOCATIONS):
    """A copy of a fine-tune config whose backbone drops tokens at ``drop_ratio``."""
    if 'model' not in cfg or 'backbone' not in cfg.model:
        raise KeyError('PTR needs a config with model.backbone (a MIMViT classifier)')
    cfg = copy.deepcopy(cfg)
    cfg.model.backbone.token_reduction = ptr_token_reduction(drop_ratio, locations)
    return cfg


def token_counts(model: torch.nn.Module) -> list:
    """Patch tokens entering the first block and after each drop stage of the backbone."""
    backbone = model.backbone
    n = backbone.num_patches
    reduction = getattr(backbone, 'token_reduction', None)
    return [n] if reduction is None else reduction.token_counts(n, backbone.num_layers)


def count_gmacs(cfg) -> Tuple[float, list]:
    """Counted multiply-adds of one image's inference forward (G) and the token schedule.

    The model is built on the ``meta`` device: shapes only, no weights, no arithmetic, so
    counting a ViT-B takes about a second. MACs are FLOPs / 2 (matmuls, convolutions and
    attention; no element-wise ops).

    Returns:
        tuple: GMACs per image and :func:`token_counts`.
    """
    meta = torch.device('meta')
    with meta:
        model = build_model(cfg, meta, init=False)
    model.eval()
    size = infer_img_size(model)
    x = torch.empty(1, 3, size, size, device=meta)  # one preprocessed image
    with torch.inference_mode():
        _, flops = count_flops(lambda: model(x, mode='tensor'))
    return flops / 2 / 1e9, token_counts(model)


class InferenceBench:
    """A fine-tune / inference model from a config: inference and fine-tuning speed.

    Args:
        name (str): Display name.
        cfg (Config): Classifier config (``model.backbone.token_reduction`` sets PTR).
        batch_size (int): Images per timed call.
        device (torch.device): Where to run.
        amp (str): ``'none'``, ``'fp16'`` or ``'bf16'`` (inference autocasts in that dtype).
    """

    def __init__(self, name: str, cfg, batch_size: int, device: torch.device,
                 amp: str = 'none') -> None:
        self.name = name
        self.cfg = cfg
        self.batch_size = batch_size
        self.device = device
        self.amp = amp
        self.model = build_model(cfg, device)
        self.model.eval()
        self.img_size = infer_img_size(self.model)
        self.data = make_batch(batch_size, self.img_size, num_classes_of(self.model))
        with torch.no_grad():
            self.inputs = self.model.data_preprocessor(self.data, False)['inputs']

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """Inference forward (backbone + head logits), no autograd."""
        with torch.inference_mode(), self._autocast():
            return self.model(inputs, mode='tensor')

    def _autocast(self):
        if self.amp == 'none':
            return torch.autocast(self.device.type, enabled=False)
        dtype = torch.float16 if self.amp == 'fp16' else torch.bfloat16
        if self.device.type != 'cuda' and self.amp == 'fp16':
            raise ValueError('fp16 autocast needs a CUDA device; use --amp bf16 on CPU')
        return torch.autocast(self.device.type, dtype=dtype)

    def time_inference(self, warmup: int, steps: int, progress: Optional[Progress] = None):
        """Durations of timed inference calls on the whole batch, seconds."""
        return Timer(self.device, warmup, steps, progress).run(
            lambda: self.forward(self.inputs), f'{self.name} inference')

    def time_train(self, warmup: int, steps: int, progress: Optional[Progress] = None):
        """Durations of timed fine-tuning steps (forward, backward, optimizer), seconds."""
        self.model.train()
        optim_wrapper = build_optim_wrapper(self.cfg, self.model, self.device, self.amp)
        step = make_train_step(self.model, optim_wrapper, self.data,
                               HookDriver(self.cfg, self.model), self.device, self.amp)
        times = Timer(self.device, warmup, steps, progress).run(step, f'{self.name} fine-tune')
        self.model.eval()
        return times

    def close(self) -> None:
        del self.model, self.inputs, self.data


def summarize_ptr(name: str, drop_ratio: float, gmacs: Optional[float], counts: list,
                  batch_size: int, infer_times: Optional[list],
                  train_times: Optional[list]) -> Dict:
    """One PTR result row (JSON-ready), with the paper's Table 5 figures when they exist."""
    paper = TABLE5.get(round(drop_ratio, 6))
    row = dict(name=name, kind='ptr', drop_ratio=drop_ratio, token_counts=counts,
               batch_size=batch_size, gmacs=gmacs,
               paper_gmacs=None if paper is None else paper['gmacs'],
               paper_throughput=None if paper is None else paper['throughput'],
               gmacs_error=None if (paper is None or gmacs is None) else
               gmacs / paper['gmacs'] - 1)
    if infer_times:
        row.update(infer_time_s=median(infer_times), infer_times_s=infer_times,
                   infer_images_per_s=batch_size / median(infer_times))
    if train_times:
        row.update(train_time_s=median(train_times), train_times_s=train_times,
                   train_images_per_s=batch_size / median(train_times))
    return row
