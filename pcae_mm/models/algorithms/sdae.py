"""SdAE: Self-distillated Masked AutoEncoder."""
from typing import Dict, List, Optional, Union

import torch
from mmpretrain.registry import MODELS

from ..heads.feature_cosine_head import standardize
from ..utils.masking import gather_tokens, num_visible
from .base import EMATeacherSelfSupervisor
from .pr_mim import PartialReconstructionMixin


@MODELS.register_module()
class SdAE(PartialReconstructionMixin, EMATeacherSelfSupervisor):
    """SdAE pre-training (`paper <https://arxiv.org/abs/2208.00449>`_, ECCV 2022).

    The student encodes the visible patches + cls and a full MAE decoder predicts, for every
    masked patch, a teacher-width feature. The EMA teacher encodes the masked patches in
    ``num_folds`` disjoint folds (the masked ids are already in random order, so fold ``f`` is
    ``ids_masked[:, f*M/F:(f+1)*M/F]``): each fold is its own sequence with its own cls, so
    folds never attend to each other (ViT-B/16, mask 0.75: 3 folds of 49, each the size of
    the student's visible set). Targets: the teacher's final-norm tokens, standardised per
    token by the head; loss ``1 - cos``.

    The cosine runs over channels by default (``FeatureCosineHead(cos_dim=-1)``); the official
    code's token-axis cosine is ``FeatureCosineHead(cos_dim=1, num_folds=F)``. The teacher is a
    copy of the student at step 0 (the official code never initialises it) and follows the EMA
    ``teacher = m * teacher + (1 - m) * student``, ``m`` cosine 0.96 -> 0.99, updated once per
    epoch by default (``teacher=dict(update_by='iter')`` for per-iteration updates).

    With ``partial_reconstruction`` (PR-MIM on SdAE) the teacher still encodes every masked
    patch in folds; the decoder only sees the chosen subset and the progressive head predicts
    teacher features of the thrown patches.

    Args:
        backbone (dict): The student :class:`MIMViT`.
        neck (dict): :class:`PartialDecoder` with ``out_dims`` = teacher width.
        head (dict): :class:`FeatureCosineHead`.
        teacher (dict, optional): :class:`EMATeacher` arguments, merged over the defaults
            ``momentum=0.96, end_momentum=0.99, update_by='epoch'``.
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
        teacher = dict(dict(momentum=0.96, end_momentum=0.99, update_by='epoch'),
                       **(teacher or {}))
        super().__init__(
            backbone=backbone,
            neck=neck,
            head=head,
            teacher=teacher,
            pretrained=pretrained,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg)
        L = self.backbone.num_patches
        num_masked = L - num_visible(L, self.backbone.mask_ratio)
        if not isinstance(num_folds, int) or num_folds < 1 or num_masked % num_folds:
            raise ValueError(
                f'num_folds={num_folds!r} does not divide the {num_masked} masked patches '
                f'({L} patches, mask_ratio={self.backbone.mask_ratio}); choose a divisor of '
                f'{num_masked} (SdAE: {num_masked} / folds = tokens per teacher fold)')
        if not self.head.needs_teacher_tokens:
            raise ValueError(f'SdAE distils teacher features: {type(self.head).__name__} does '
                             'not take them; use FeatureCosineHead')
        if getattr(self.head, 'cos_dim', -1) == 1:
            if self.head.num_folds != num_folds:
                raise ValueError(f'FeatureCosineHead(cos_dim=1) must use num_folds={num_folds} '
                                 f'like the teacher, got {self.head.num_folds}')
            if partial_reconstruction is not None:
                raise ValueError('the token-axis cosine (cos_dim=1) needs whole teacher folds; '
                                 'with partial_reconstruction use cos_dim=-1')
        self.num_folds = num_folds
        self.build_partial_reconstruction(partial_reconstruction)

    def encode(self, inputs: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Student, decoder and folded teacher forward shared by :meth:`loss` and
        :meth:`reconstruct`.

        Returns:
            dict: ``latent`` B x (1+V) x C, ``mask`` B x L, ``ids_keep`` B x V, ``ids_masked``
            B x M, ``fold_ids`` B x F x M/F, ``target`` B x M x C (teacher tokens at
            ``ids_masked``, fold by fold), and :meth:`decode`'s ``ids_decode`` B x K, ``hidden``
            B x K x D, ``pred`` B x K x C (+ ``selection``). Without partial reconstruction
            ``ids_decode`` is ``ids_masked``, so ``pred`` and ``target`` line up token by token.
        """
        latent, info = self.backbone(inputs)  # B x (1+V) x C
        B, M = info.ids_masked.shape
        target, _, _ = self.teacher_forward(
            inputs, info.ids_masked, num_folds=self.num_folds, with_cls=True)  # B x M x C
        out = self.decode(latent, info)  # pred: B x K x C
        out.update(latent=latent, mask=info.mask, ids_keep=info.ids_keep,
                   ids_masked=info.ids_masked, target=target,
                   fold_ids=info.ids_masked.reshape(B, self.num_folds, M // self.num_folds))
        return out

    def target_at(self, out: Dict[str, torch.Tensor], ids: torch.Tensor) -> torch.Tensor:
        """Teacher tokens at patch ids ``ids`` (B x K, all masked) -> B x K x C."""
        if ids is out['ids_masked']:
            return out['target']
        target = out['target']  # B x M x C
        B, M, C = target.shape
        canvas = target.new_zeros(B, self.backbone.num_patches, C)  # B x L x C
        canvas.scatter_(1, out['ids_masked'][..., None].expand(-1, -1, C), target)
        return gather_tokens(canvas, ids)  # B x K x C

    def loss(self, inputs: torch.Tensor, data_samples: List, **kwargs) -> Dict[str, torch.Tensor]:
        """Cosine loss between decoder predictions and the folded teacher's features.

        Args:
            inputs (Tensor): Images, B x 3 x H x W.
            data_samples (list): Unused.

        Returns:
            dict: ``loss`` (and ``loss_progressive`` with PR-MIM's progressive path).
        """
        self.check_teacher_driven()
        out = self.encode(inputs)
        return self.reconstruction_losses(out, inputs, lambda ids: self.target_at(out, ids))

    @torch.no_grad()
    def reconstruct(self, inputs: torch.Tensor) -> Dict[str, torch.Tensor]:
        """:meth:`encode` without gradients plus ``similarity`` B x K: cosine of each
        prediction with its standardised teacher target."""
        out = self.encode(inputs)
        target = self.target_at(out, out['ids_decode'])  # B x K x C
        out['similarity'] = torch.nn.functional.cosine_similarity(
            out['pred'].float(), standardize(target.float()), dim=-1)
        return out
