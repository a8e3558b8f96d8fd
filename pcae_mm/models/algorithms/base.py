"""What every pcae_mm algorithm shares: the typed step output and the plain-feature forward."""
from dataclasses import dataclass
from typing import Optional, Tuple, Type, TypeVar

import torch
from mmpretrain.models.selfsup import BaseSelfSupervisor
from torch import Tensor

from ..utils.targets import standardize

R = TypeVar('R')


@dataclass
class MIMOutput:
    """One masked-image-modeling step, returned by every algorithm's ``forward_mim`` and read
    by its ``loss``, ``reconstruct``, the visualisation hook and the demo.

    Shapes: B images, L patches, V visible, M masked, K predicted (K <= M), C / P widths.

    Attributes:
        latent (Tensor): Student encoder output, B x (1 + V) x C (cls first; the hybrid
            MR-MCMAE encoder has no cls: B x V x C).
        mask (Tensor): B x L, 1 = masked.
        ids_keep (Tensor): Visible patch ids, B x V.
        ids_masked (Tensor): Masked patch ids, B x M (random order).
        ids_pred (Tensor): Ids of the predicted patches, B x K: every masked patch (MAE,
            SdAE, MR-MAE), the teacher's PTR survivors (PCAE) or PR-MIM's decoded subset.
        pred (Tensor): Decoder predictions at ``ids_pred``, B x K x P.
        target (Tensor): Targets at ``ids_pred``, B x K x P: raw patch pixels (the pixel head
            normalises them) or un-standardised teacher tokens (the cosine head standardises).
        pixels (bool): ``pred`` / ``target`` are pixels (True) or features (False).
        extras (tuple): The method family's own typed records, each defined next to the part
            that produces it (an EMA teacher's ``TeacherOut``, PR-MIM's ``PartialOut``,
            MR-MAE's ``MimicOut``); read them with :meth:`extra`.
        similarity (Tensor, optional): ``reconstruct`` only, feature targets: cosine of each
            prediction with its standardised target, B x K.
    """
    latent: Tensor
    mask: Tensor
    ids_keep: Tensor
    ids_masked: Tensor
    ids_pred: Tensor
    pred: Tensor
    target: Tensor
    pixels: bool
    extras: Tuple = ()
    similarity: Optional[Tensor] = None

    def extra(self, record: Type[R]) -> Optional[R]:
        """The record of type ``record`` in :attr:`extras` (e.g. ``out.extra(TeacherOut)``),
        or None when this method has none."""
        return next((e for e in self.extras if isinstance(e, record)), None)


class MIMSelfSupervisor(BaseSelfSupervisor):
    """Self-supervisor whose ``tensor`` mode returns plain (unmasked) backbone features.

    Subclasses implement ``forward_mim(inputs) -> MIMOutput`` (the step shared by ``loss``
    and ``reconstruct``) and ``loss``.
    """

    def extract_feat(self, inputs: torch.Tensor):
        """Backbone features without masking (``mode='tensor'``)."""
        return self.backbone(inputs, mask=False)

    def forward_mim(self, inputs: torch.Tensor) -> MIMOutput:
        raise NotImplementedError

    @torch.no_grad()
    def reconstruct(self, inputs: torch.Tensor) -> MIMOutput:
        """:meth:`forward_mim` without gradients, for visualisation; feature targets also get
        ``similarity``.

        Args:
            inputs (Tensor): Normalised images, B x 3 x H x W.
        """
        out = self.forward_mim(inputs)
        if not out.pixels:
            out.similarity = torch.nn.functional.cosine_similarity(
                out.pred.float(), standardize(out.target.float()), dim=-1)  # B x K
        return out
