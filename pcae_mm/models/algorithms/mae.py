"""MAE from the shared parts, the pixel-target base of PR-MIM."""
from typing import Dict, List, Optional, Union

import torch
from mmpretrain.registry import MODELS

from .base import MIMSelfSupervisor
from .pr_mim import PartialReconstructionMixin


@MODELS.register_module()
class PixelMAE(PartialReconstructionMixin, MIMSelfSupervisor):
    """MAE (`paper <https://arxiv.org/abs/2111.06377>`_) on the shared parts, optionally PR-MIM.

    The student :class:`MIMViT` encodes the visible patches + cls, the :class:`PartialDecoder`
    predicts pixels of the masked patches and :class:`PartialPixelHead` takes the norm-pix MSE.
    Without ``partial_reconstruction`` the decoder sees every masked patch (1 + 49 + 147 = 197
    tokens for ViT-B/16), i.e. plain MAE; with it, PR-MIM: only the chosen subset is decoded
    (1 + 49 + 49 = 99 at throw 0.5) and the thrown patches are supervised by the light
    progressive head. (mmpretrain already registers ``MAE``, hence the name.)

    Args:
        backbone (dict): :class:`MIMViT`.
        neck (dict): :class:`PartialDecoder` with ``out_dims = patch_size**2 * 3``.
        head (dict): :class:`PartialPixelHead`.
        partial_reconstruction (dict, optional): :class:`PartialReconstruction` arguments
            (``throw_ratio``, ``sampling``, ``progressive``). Defaults to None (plain MAE).
        Others as :class:`mmpretrain.models.selfsup.BaseSelfSupervisor`.
    """

    def __init__(self,
                 backbone: dict,
                 neck: dict,
                 head: dict,
                 partial_reconstruction: Optional[dict] = None,
                 pretrained: Optional[str] = None,
                 data_preprocessor: Optional[Union[dict, torch.nn.Module]] = None,
                 init_cfg: Optional[Union[List[dict], dict]] = None) -> None:
        super().__init__(
            backbone=backbone,
            neck=neck,
            head=head,
            pretrained=pretrained,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg)
        if self.head.needs_teacher_tokens:
            raise ValueError(f'PixelMAE has no teacher: {type(self.head).__name__} needs teacher '
                             'tokens; use PartialPixelHead (or SdAE / PCAE for feature targets)')
        self.build_partial_reconstruction(partial_reconstruction)

    def encode(self, inputs: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Encoder and decoder forward shared by :meth:`loss` and :meth:`reconstruct`.

        Returns:
            dict: ``latent`` B x (1+V) x C, ``mask`` B x L, ``ids_keep`` B x V, ``ids_masked``
            B x M, and :meth:`decode`'s ``ids_decode`` B x K, ``hidden`` B x K x D, ``pred``
            B x K x (p*p*3) (+ ``selection``).
        """
        latent, info = self.backbone(inputs)  # B x (1+V) x C
        out = self.decode(latent, info)  # pred: B x K x ppC
        out.update(latent=latent, mask=info.mask, ids_keep=info.ids_keep,
                   ids_masked=info.ids_masked)
        return out

    def loss(self, inputs: torch.Tensor, data_samples: List, **kwargs) -> Dict[str, torch.Tensor]:
        """Norm-pix MSE on the decoded patches (+ progressive loss on the thrown ones).

        Args:
            inputs (Tensor): Images, B x 3 x H x W.
            data_samples (list): Unused.

        Returns:
            dict: ``loss`` (and ``loss_progressive`` with PR-MIM's progressive path).
        """
        out = self.encode(inputs)
        return self.reconstruction_losses(out, inputs, target_at=lambda ids: None)

    @torch.no_grad()
    def reconstruct(self, inputs: torch.Tensor) -> Dict[str, torch.Tensor]:
        """:meth:`encode` without gradients, for visualisation."""
        return self.encode(inputs)
