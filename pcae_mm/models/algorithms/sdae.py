"""SdAE: Self-distillated Masked AutoEncoder."""
from typing import Dict, List, Optional, Union

import torch
from mmpretrain.registry import MODELS

from ..teachers.ema import ema_settings
from ..teachers.ema_teacher import FoldedEMATeacher, TeacherOut
from ..utils.masking import gather_tokens
from .base import MIMOutput
from .ema_self_supervisor import EMATeacherSelfSupervisor
from .pr_mim import PartialReconstructionMixin


@MODELS.register_module()
class SdAE(PartialReconstructionMixin, EMATeacherSelfSupervisor):
    """SdAE pre-training (`paper <https://arxiv.org/abs/2208.00449>`_, ECCV 2022).

    The student encodes the visible patches + cls and a full MAE decoder predicts, for every
    masked patch, a teacher-width feature. The EMA teacher (:class:`FoldedEMATeacher`) encodes
    the masked patches in ``num_folds`` disjoint folds (the masked ids are already in random
    order, so fold ``f`` is ``ids_masked[:, f*M/F:(f+1)*M/F]``): each fold is its own sequence
    with its own cls, so folds never attend to each other (ViT-B/16, mask 0.75: 3 folds of 49,
    each the size of the student's visible set). Targets: the teacher's final-norm tokens,
    standardised per token by the head; loss ``1 - cos``.

    The cosine runs over channels by default (``FeatureCosineHead(cos_dim=-1)``); the official
    code's token-axis cosine is ``FeatureCosineHead(cos_dim=1, num_folds=F)``. The teacher is a
    copy of the student at step 0 (the official code never initialises it from the student:
    ``teacher=dict(init='random')`` gives its own random init instead) and follows the EMA
    ``teacher = m * teacher + (1 - m) * student``, ``m`` cosine 0.96 -> 0.99, updated once per
    epoch by default (``teacher=dict(update_by='iter')`` for per-iteration updates).

    With ``partial_reconstruction`` (PR-MIM on SdAE) the teacher still encodes every masked
    patch in folds; the decoder only sees the chosen subset and the progressive head predicts
    teacher features of the thrown patches.

    Args:
        backbone (dict): The student :class:`MIMViT`.
        neck (dict): :class:`PartialDecoder` with ``out_dims`` = teacher width.
        head (dict): :class:`FeatureCosineHead`.
        teacher (dict, optional): :class:`EMAModel` arguments, merged over the defaults
            ``momentum=0.96, end_momentum=0.99, update_by='epoch'`` (``horizon`` /
            ``end_horizon`` replace a default momentum: time scales as shares of the run).
        num_folds (int): Teacher folds F; must divide the masked count M. Defaults to 3.
        partial_reconstruction (dict, optional): PR-MIM's :class:`PartialReconstruction`
            arguments. Defaults to None (decode every masked patch).
        Others as :class:`mmpretrain.models.selfsup.BaseSelfSupervisor`.
    """

    def __init__(self,
                 backbone: dict,
                 neck: dict,
                 head: dict,
                 teacher: Optional[dict] = None,
                 num_folds: int = 3,
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
        M = self.backbone.num_masked
        if not isinstance(num_folds, int) or num_folds < 1 or M % num_folds:
            raise ValueError(
                f'num_folds={num_folds!r} does not divide the {M} masked patches '
                f'({self.backbone.num_patches} patches, mask_ratio={self.backbone.mask_ratio}); '
                f'choose a divisor of {M} (SdAE: {M} / folds = tokens per teacher fold)')
        if getattr(self.head, 'cos_dim', -1) == 1:
            if self.head.num_folds != num_folds:
                raise ValueError(f'FeatureCosineHead(cos_dim=1) must use num_folds={num_folds} '
                                 f'like the teacher, got {self.head.num_folds}')
            if partial_reconstruction is not None:
                raise ValueError('the token-axis cosine (cos_dim=1) needs whole teacher folds; '
                                 'with partial_reconstruction use cos_dim=-1')
        self.num_folds = num_folds
        teacher = ema_settings(teacher, momentum=0.96, end_momentum=0.99, update_by='epoch')
        self.teacher = FoldedEMATeacher(self.backbone, num_folds=num_folds, **teacher)
        self.build_partial_reconstruction(partial_reconstruction)

    def forward_mim(self, inputs: torch.Tensor) -> MIMOutput:
        """Student on the visible patches, folded teacher on the masked ones, decoder on all
        masked patches (or PR-MIM's subset).

        Args:
            inputs (Tensor): Images, B x 3 x H x W.

        Returns:
            MIMOutput: ``pred`` B x K x C and teacher-token ``target`` B x K x C at
            ``ids_pred`` (all of ``ids_masked`` without partial reconstruction); extras: the
            :class:`TeacherOut` (tokens B x M x C at ``ids_masked``) and PR-MIM's record.
        """
        latent, info = self.backbone(inputs)  # B x (1+V) x C, MaskInfo
        teacher = self.teacher(inputs, info.ids_masked)  # B x M x C at ids_masked, F folds
        dec = self.decode(latent, info)  # pred: B x K x C at ids_pred B x K
        return MIMOutput(latent=latent, mask=info.mask, ids_keep=info.ids_keep,
                         ids_masked=info.ids_masked, ids_pred=dec.ids_pred, pred=dec.pred,
                         target=self.teacher_tokens_at(teacher, dec.ids_pred), pixels=False,
                         extras=(teacher, ) + dec.extras)

    def teacher_tokens_at(self, teacher: TeacherOut, ids: torch.Tensor) -> torch.Tensor:
        """Teacher tokens at patch ids ``ids`` (B x K, all masked) -> B x K x C."""
        if ids is teacher.ids:
            return teacher.tokens
        B, M, C = teacher.tokens.shape
        canvas = teacher.tokens.new_zeros(B, self.backbone.num_patches, C)  # B x L x C
        canvas.scatter_(1, teacher.ids[..., None].expand(-1, -1, C), teacher.tokens)
        return gather_tokens(canvas, ids)  # B x K x C

    def loss(self, inputs: torch.Tensor, data_samples: List) -> Dict[str, torch.Tensor]:
        """Cosine loss between decoder predictions and the folded teacher's features.

        Args:
            inputs (Tensor): Images, B x 3 x H x W.
            data_samples (list): Unused.

        Returns:
            dict: ``loss`` (and ``progressive_share``, ``loss_progressive`` with PR-MIM's
            progressive path).
        """
        self.check_teacher_driven()
        out = self.forward_mim(inputs)
        teacher = out.extra(TeacherOut)
        return self.mim_losses(  # thrown patches' targets: their teacher tokens, B x S x C
            out, lambda ids: self.teacher_tokens_at(teacher, ids))
