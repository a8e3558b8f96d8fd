"""PR-MIM (partial + progressive reconstruction) as a strategy mixed into MIM algorithms.

PR-MIM is not a separate algorithm: it changes WHICH masked tokens the decoder sees and adds a
cheap loss for the others, whatever the target. :class:`PixelMAE` (pixel target) and
:class:`SdAE` (EMA-teacher feature target) take it through ``partial_reconstruction=dict(...)``;
the work is done by the registered :class:`~pcae_mm.models.utils.PartialReconstruction` part.
"""
from typing import Callable, Dict, NamedTuple, Optional, Tuple

import torch
from mmpretrain.registry import MODELS

from ..utils.masking import MaskInfo
from ..utils.partial_reconstruction import Selection
from .base import MIMOutput

TargetFn = Callable[[torch.Tensor], torch.Tensor]


class PartialOut(NamedTuple):
    """PR-MIM's record in a ``MIMOutput`` (what its progressive loss reads).

    Attributes:
        hidden (Tensor): Final decoder states of the decoded tokens, B x K x D.
        selection (Selection): The decoded / thrown split.
    """
    hidden: torch.Tensor
    selection: Selection


class Decoded(NamedTuple):
    """The decoder's output over the chosen masked tokens (see :meth:`decode`).

    Attributes:
        ids_pred (Tensor): Ids of the decoded patches, B x K.
        pred (Tensor): Predictions, B x K x P.
        extras (tuple): ``(PartialOut,)`` with partial reconstruction, else empty.
    """
    ids_pred: torch.Tensor
    pred: torch.Tensor
    extras: Tuple


class PartialReconstructionMixin:
    """Decode all masked tokens, or (with ``partial_reconstruction``) PR-MIM's subset, and
    take the loss: the head's on the decoded tokens plus PR-MIM's progressive loss.

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
            reconstruction), ``pred`` B x K x P, and PR-MIM's :class:`PartialOut`.
        """
        if self.partial_reconstruction is None:
            hidden = self.neck.forward_features(latent, info.ids_keep, info.ids_masked)
            return Decoded(info.ids_masked, self.neck.predict(hidden), ())  # B x M x P
        selection = self.partial_reconstruction.select(info.ids_keep, info.ids_masked)
        ids_pred = selection.ids_decode  # B x K
        hidden = self.neck.forward_features(latent, info.ids_keep, ids_pred)  # B x K x D
        return Decoded(ids_pred, self.neck.predict(hidden),
                       (PartialOut(hidden, selection), ))  # pred: B x K x P

    def mim_losses(self, out: MIMOutput, target_at: TargetFn) -> Dict[str, torch.Tensor]:
        """The head's loss on the decoded tokens, plus PR-MIM's progressive loss.

        Args:
            out (MIMOutput): The step, from ``forward_mim``.
            target_at (callable): ids B x S (thrown patches) -> the head's targets there,
                B x S x P.

        Returns:
            dict: ``loss``, and with PR-MIM's progressive path ``progressive_share`` (the
            supervised share of thrown patches, logged, not a loss) and ``loss_progressive``
            (mean over the supervised thrown patches, times ``loss_weight``).
        """
        losses = dict(loss=self.head.loss(out.pred, out.target))
        part, partial = self.partial_reconstruction, out.extra(PartialOut)
        if part is None or part.progressive is None:
            return losses
        pred, ids = part.predict_thrown(partial.hidden, partial.selection)  # B x S x P, B x S
        losses['progressive_share'] = pred.new_tensor(part.share()).detach()
        if ids.shape[1] == 0:  # nothing supervised yet: keep the head in the graph (DDP)
            losses['loss_progressive'] = pred.sum() * 0.
        else:
            losses['loss_progressive'] = part.progressive['loss_weight'] * self.head.loss(
                pred, target_at(ids))
        return losses
