"""PR-MIM (partial + progressive reconstruction) as a strategy mixed into MIM algorithms.

PR-MIM is not a separate algorithm: it changes WHICH masked tokens the decoder sees and adds a
cheap loss for the others, whatever the target. :class:`PixelMAE` (pixel target) and
:class:`SdAE` (EMA-teacher feature target) take it through ``partial_reconstruction=dict(...)``;
the work is done by the registered :class:`~pcae_mm.models.utils.PartialReconstruction` part.
"""
from typing import Callable, Dict, NamedTuple, Optional

import torch
from mmpretrain.registry import MODELS

from ..utils.masking import MaskInfo
from ..utils.partial_reconstruction import Selection

TargetFn = Callable[[torch.Tensor], torch.Tensor]


class Decoded(NamedTuple):
    """The decoder's output over the chosen masked tokens (see :meth:`decode`)."""
    ids_pred: torch.Tensor  # B x K
    hidden: torch.Tensor  # B x K x D
    pred: torch.Tensor  # B x K x P
    selection: Optional[Selection]


class PartialReconstructionMixin:
    """Decode all masked tokens, or (with ``partial_reconstruction``) PR-MIM's subset.

    The host algorithm has a :class:`MIMViT` ``backbone``, a :class:`PartialDecoder` ``neck``
    and a head with ``loss(pred, target)``.
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
        cfg.setdefault('in_dims', self.neck.embed_dims)
        cfg.setdefault('out_dims', self.neck.out_dims)
        cfg.setdefault('grid_size', tuple(self.backbone.patch_resolution))
        self.partial_reconstruction = MODELS.build(cfg)
        self.partial_reconstruction.check(self.backbone.num_patches, self.backbone.num_masked)

    def decode(self, latent: torch.Tensor, info: MaskInfo) -> Decoded:
        """Run the decoder on every masked token, or on PR-MIM's chosen subset.

        Args:
            latent (Tensor): Student encoder output, B x (1 + V) x C.
            info (MaskInfo): The student's mask.

        Returns:
            Decoded: ``ids_pred`` B x K (``ids_masked`` itself without partial
            reconstruction), ``hidden`` B x K x D, ``pred`` B x K x P, ``selection``.
        """
        selection = None
        if self.partial_reconstruction is None:
            ids_pred = info.ids_masked  # B x M
        else:
            selection = self.partial_reconstruction.select(info.ids_keep, info.ids_masked)
            ids_pred = selection.ids_decode  # B x K
        hidden = self.neck.forward_features(latent, info.ids_keep, ids_pred)  # B x K x D
        return Decoded(ids_pred, hidden, self.neck.predict(hidden), selection)  # pred: B x K x P

    def progressive_losses(self, hidden: torch.Tensor, selection: Optional[Selection],
                           target_at: TargetFn) -> Dict[str, torch.Tensor]:
        """PR-MIM's progressive loss on the thrown patches (empty dict when off).

        Args:
            hidden (Tensor): Decoder states of the decoded tokens, B x K x D.
            selection (Selection): From :meth:`decode`.
            target_at (callable): ids B x S -> the head's targets there, B x S x P.

        Returns:
            dict: ``progressive_share`` (the supervised share of thrown patches, logged, not a
            loss) and ``loss_progressive`` (mean over the supervised thrown patches, times
            ``loss_weight``).
        """
        part = self.partial_reconstruction
        if part is None or part.progressive is None:
            return {}
        pred, ids = part.predict_thrown(hidden, selection)  # B x S x P, B x S
        losses = dict(progressive_share=pred.new_tensor(part.share()).detach())
        if ids.shape[1] == 0:  # nothing supervised yet: keep the head in the graph (DDP)
            losses['loss_progressive'] = pred.sum() * 0.
        else:
            losses['loss_progressive'] = part.progressive['loss_weight'] * self.head.loss(
                pred, target_at(ids))
        return losses
