"""PR-MIM (partial + progressive reconstruction) as a strategy mixed into MIM algorithms.

PR-MIM is not a separate algorithm: it changes WHICH masked tokens the decoder sees and adds a
cheap loss for the others, whatever the target. :class:`PixelMAE` (pixel target) and
:class:`SdAE` (EMA-teacher feature target) take it through ``partial_reconstruction=dict(...)``;
the work is done by the registered :class:`~pcae_mm.models.utils.PartialReconstruction` part.
"""
from typing import Callable, Dict, Optional

import torch
from mmpretrain.registry import MODELS

from ..utils.masking import MaskInfo, num_visible
from ..utils.partial_reconstruction import Selection

TargetFn = Callable[[torch.Tensor], Optional[torch.Tensor]]


class PartialReconstructionMixin:
    """Decode all masked tokens, or (with ``partial_reconstruction``) PR-MIM's subset.

    The host algorithm has a :class:`MIMViT` ``backbone``, a :class:`PartialDecoder` ``neck``
    and a head with ``loss(pred, target=..., images=..., ids=...)``.
    """

    partial_reconstruction: Optional[torch.nn.Module]

    def build_partial_reconstruction(self, cfg: Optional[dict]) -> None:
        """Build ``self.partial_reconstruction`` from ``cfg`` (None: decode every masked patch).

        Sizes the part from the model (decoder width, prediction width, patch grid) and checks
        that its thrown share fits the backbone's masking.
        """
        self.partial_reconstruction = None
        if cfg is None:
            return
        cfg = dict(cfg)
        cfg.setdefault('type', 'PartialReconstruction')
        cfg.setdefault('in_dims', self.neck.decoder_embed.out_features)
        cfg.setdefault('out_dims', self.neck.decoder_pred.out_features)
        cfg.setdefault('grid_size', tuple(self.backbone.patch_resolution))
        self.partial_reconstruction = MODELS.build(cfg)
        L = self.backbone.num_patches
        self.partial_reconstruction.check(L, L - num_visible(L, self.backbone.mask_ratio))

    def decode(self, latent: torch.Tensor, info: MaskInfo) -> Dict[str, torch.Tensor]:
        """Run the decoder on the chosen masked tokens.

        Args:
            latent (Tensor): Student encoder output, B x (1 + V) x C.
            info (MaskInfo): The student's mask.

        Returns:
            dict: ``ids_decode`` B x K (all masked ids, in ``ids_masked`` order, without partial
            reconstruction), ``hidden`` B x K x D, ``pred`` B x K x P and, with partial
            reconstruction, ``selection`` (:class:`Selection`).
        """
        out = {}
        if self.partial_reconstruction is None:
            ids_decode = info.ids_masked  # B x M
        else:
            out['selection'] = self.partial_reconstruction.select(info.ids_keep,
                                                                  info.ids_masked)
            ids_decode = out['selection'].ids_decode  # B x K
        hidden = self.neck.forward_features(latent, info.ids_keep, ids_decode)  # B x K x D
        out.update(ids_decode=ids_decode, hidden=hidden,
                   pred=self.neck.decoder_pred(hidden))  # B x K x P
        return out

    def reconstruction_losses(self, out: Dict, inputs: torch.Tensor,
                              target_at: TargetFn) -> Dict[str, torch.Tensor]:
        """``loss`` on the decoded tokens and, when on, ``loss_progressive`` on thrown ones.

        Args:
            out (dict): From :meth:`decode`.
            inputs (Tensor): Images, B x 3 x H x W (pixel targets).
            target_at (callable): ids B x K -> teacher targets B x K x C, or None for heads
                that build their target from the images.

        Returns:
            dict: ``loss`` and, with the progressive path, ``loss_progressive`` (mean over the
            supervised thrown patches, times ``loss_weight``) and ``progressive_share`` (the
            supervised share of thrown patches, logged, not a loss).
        """
        ids = out['ids_decode']
        losses = dict(loss=self.head_loss(out['pred'], ids, inputs, target_at(ids)))
        part = self.partial_reconstruction
        if part is None or part.progressive is None:
            return losses
        selection: Selection = out['selection']
        pred, ids = part.predict_thrown(out['hidden'], selection)  # B x S x P, B x S
        losses['progressive_share'] = pred.new_tensor(part.share()).detach()
        if ids.shape[1] == 0:  # nothing supervised yet: keep the head in the graph (DDP)
            losses['loss_progressive'] = pred.sum() * 0.
        else:
            losses['loss_progressive'] = part.progressive['loss_weight'] * self.head_loss(
                pred, ids, inputs, target_at(ids))
        return losses
