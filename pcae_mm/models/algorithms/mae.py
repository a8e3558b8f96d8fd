"""MAE from the shared parts, the pixel-target base of PR-MIM."""
from typing import Dict, List, Optional, Union

import torch
from mmpretrain.registry import MODELS

from ..utils.targets import patch_pixels
from .base import MIMOutput, MIMSelfSupervisor
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
        self.build_partial_reconstruction(partial_reconstruction)

    def forward_mim(self, inputs: torch.Tensor) -> MIMOutput:
        """Encoder on the visible patches, decoder on the masked ones (or PR-MIM's subset).

        Args:
            inputs (Tensor): Images, B x 3 x H x W.

        Returns:
            MIMOutput: ``pred`` and raw-pixel ``target`` B x K x (p*p*3) at ``ids_pred``.
        """
        latent, info = self.backbone(inputs)  # B x (1+V) x C, MaskInfo
        dec = self.decode(latent, info)  # pred: B x K x ppC at ids_pred B x K
        target = patch_pixels(inputs, dec.ids_pred, self.backbone.patch_size)  # B x K x ppC
        return MIMOutput(latent=latent, mask=info.mask, ids_keep=info.ids_keep,
                         ids_masked=info.ids_masked, ids_pred=dec.ids_pred, pred=dec.pred,
                         target=target, pixels=True, extras=dec.extras)

    def loss(self, inputs: torch.Tensor, data_samples: List) -> Dict[str, torch.Tensor]:
        """Norm-pix MSE on the decoded patches (+ PR-MIM's progressive loss on thrown ones).

        Args:
            inputs (Tensor): Images, B x 3 x H x W.
            data_samples (list): Unused.

        Returns:
            dict: ``loss`` (and ``progressive_share``, ``loss_progressive`` with PR-MIM's
            progressive path).
        """
        out = self.forward_mim(inputs)
        return self.mim_losses(  # thrown patches' targets: their pixels, B x S x ppC
            out, lambda ids: patch_pixels(inputs, ids, self.backbone.patch_size))
