"""What every pcae_mm algorithm shares: the typed step output and the EMA-teacher plumbing."""
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Union

import torch
from mmpretrain.models.selfsup import BaseSelfSupervisor
from torch import Tensor

from ..heads.feature_cosine_head import standardize
from ..teachers.ema_teacher import EMATeacher, TeacherOut
from ..utils.partial_reconstruction import Selection


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
        hidden (Tensor, optional): Final decoder states at ``ids_pred``, B x K x D (PR-MIM's
            progressive head reads them).
        selection (Selection, optional): PR-MIM's decoded / thrown split.
        teacher (TeacherOut, optional): The EMA teacher's tokens, their ids and PTR stages.
        similarity (Tensor, optional): ``reconstruct`` only, feature targets: cosine of each
            prediction with its standardised target, B x K.
        mimic (dict): MR-MAE: teacher name -> mimic-head prediction on the visible tokens,
            B x V x C_t.
        mimic_target (dict): MR-MAE: teacher name -> frozen-teacher target at ``ids_keep``,
            B x V x C_t.
    """
    latent: Tensor
    mask: Tensor
    ids_keep: Tensor
    ids_masked: Tensor
    ids_pred: Tensor
    pred: Tensor
    target: Tensor
    pixels: bool
    hidden: Optional[Tensor] = None
    selection: Optional[Selection] = None
    teacher: Optional[TeacherOut] = None
    similarity: Optional[Tensor] = None
    mimic: Dict[str, Tensor] = field(default_factory=dict)
    mimic_target: Dict[str, Tensor] = field(default_factory=dict)

    @property
    def stage_ids(self) -> List[Tensor]:
        """Ids kept after each of the teacher's token-reduction stages (PCAE), else []."""
        return [] if self.teacher is None else list(self.teacher.stage_ids)


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


class EMATeacherSelfSupervisor(MIMSelfSupervisor):
    """A self-supervisor with an EMA copy of its backbone as teacher.

    The teacher is re-synchronised with the student right after weight initialisation, so at
    step 0 it equals the student (the official PCAE code only copies it under DDP, and SdAE's
    never does); ``teacher=dict(init='random')`` gives it its own random init instead, as the
    official SdAE code. :class:`~pcae_mm.engine.hooks.EMATeacherHook` calls
    :meth:`momentum_update`.

    Args:
        teacher (dict): Keyword arguments of :class:`EMATeacher` (momentum, end_momentum,
            schedule, update_by, interval, init).
        Others as :class:`mmpretrain.models.selfsup.BaseSelfSupervisor`.
    """

    def __init__(self,
                 backbone: dict,
                 neck: Optional[dict] = None,
                 head: Optional[dict] = None,
                 teacher: Optional[dict] = None,
                 target_generator: Optional[dict] = None,
                 pretrained: Optional[str] = None,
                 data_preprocessor: Optional[Union[dict, torch.nn.Module]] = None,
                 init_cfg: Optional[Union[List[dict], dict]] = None) -> None:
        super().__init__(
            backbone=backbone,
            neck=neck,
            head=head,
            target_generator=target_generator,
            pretrained=pretrained,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg)
        self.teacher = EMATeacher(self.backbone, **(teacher or {}))

    def init_weights(self) -> None:
        super().init_weights()
        self.teacher.reset(self.backbone)

    def momentum_update(self) -> None:
        """One EMA step of the teacher toward the current student backbone."""
        self.teacher.update_parameters(self.backbone)

    def fsdp_ignored_modules(self) -> List[torch.nn.Module]:
        """Modules FSDP must keep whole on every rank (the EMA teacher; see
        :class:`~pcae_mm.engine.fsdp.TeacherReplicatedFSDP`)."""
        return [self.teacher]

    def check_teacher_driven(self) -> None:
        """Fail loudly when training without the hook that updates the teacher."""
        if self.training and self.teacher.total_updates is None:
            raise RuntimeError(
                f'{type(self).__name__} trains an EMA teacher but nothing drives it: add '
                "custom_hooks=[dict(type='EMATeacherHook')] to the config")

