"""PCAE: Progressively Compressed Auto-Encoder."""
from typing import Dict, List, Optional, Union

import torch
from mmpretrain.registry import MODELS

from ..backbones.mim_vit import build_token_reduction
from ..heads.feature_cosine_head import standardize
from ..utils.masking import num_visible
from .base import EMATeacherSelfSupervisor


@MODELS.register_module()
class PCAE(EMATeacherSelfSupervisor):
    """PCAE pre-training (`paper <https://arxiv.org/abs/2211.13184>`_, ICLR 2023).

    The student encodes the visible patches. The EMA teacher encodes the MASKED patches and
    drops, after a few blocks, the tokens most similar to their mean (progressive token
    reduction): 147 -> 73 -> 36 -> 18 for ViT-B/16 at mask 0.75. The decoder then predicts only
    those 18 survivors, and the loss compares them with the teacher's standardised features.

    Args:
        backbone (dict): The student :class:`MIMViT`.
        neck (dict): The :class:`PartialDecoder`.
        head (dict): :class:`FeatureCosineHead` (default target) or :class:`PartialPixelHead`.
        teacher (dict): :class:`EMATeacher` arguments. Defaults: momentum 0.9999 -> 1.0, cosine,
            per iteration.
        token_reduction (dict): Teacher PTR: ``keep_ratio`` and ``num_stages`` or ``locations``,
            ``mode`` ('similarity' or 'random'). Defaults to 3 stages keeping 0.5.
    """

    def __init__(self,
                 backbone: dict,
                 neck: dict,
                 head: dict,
                 teacher: Optional[dict] = None,
                 token_reduction: dict = dict(num_stages=3, keep_ratio=0.5),
                 pretrained: Optional[str] = None,
                 data_preprocessor: Optional[Union[dict, torch.nn.Module]] = None,
                 init_cfg: Optional[Union[List[dict], dict]] = None) -> None:
        teacher = dict(dict(momentum=0.9999, end_momentum=1.0), **(teacher or {}))
        super().__init__(
            backbone=backbone,
            neck=neck,
            head=head,
            teacher=teacher,
            pretrained=pretrained,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg)
        self.token_reduction = build_token_reduction(token_reduction, self.backbone.num_layers,
                                                     num_fixed=0)
        num_masked = self.backbone.num_patches - num_visible(self.backbone.num_patches,
                                                             self.backbone.mask_ratio)
        if self.token_reduction is not None:
            self.token_reduction.check(num_masked, self.backbone.num_layers)

    def encode(self, inputs: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Student and teacher forward shared by :meth:`loss` and :meth:`reconstruct`.

        Returns:
            dict: ``latent`` B x (1+V) x C, ``mask`` B x L, ``ids_keep`` B x V, ``ids_target``
            B x K (teacher survivors; also under ``ids_decode``, the name every algorithm uses
            for the predictions' ids), ``target`` B x K x C (teacher tokens), ``stage_ids``
            list of B x K_s, and ``pred`` B x K x P.
        """
        latent, info = self.backbone(inputs)  # B x (1+V) x C
        target, ids_target, stage_ids = self.teacher_forward(
            inputs, info.ids_masked, reduction=self.token_reduction)  # B x K x C, B x K
        pred = self.neck(latent, info.ids_keep, ids_target)  # B x K x P
        return dict(latent=latent, mask=info.mask, ids_keep=info.ids_keep,
                    ids_masked=info.ids_masked, ids_target=ids_target, target=target,
                    stage_ids=stage_ids, pred=pred,
                    ids_decode=ids_target)  # the predictions' ids, as in every algorithm

    def loss(self, inputs: torch.Tensor, data_samples: List, **kwargs) -> Dict[str, torch.Tensor]:
        """Cosine (or pixel) loss on the teacher's surviving masked tokens.

        Args:
            inputs (Tensor): Images, B x 3 x H x W.
            data_samples (list): Unused.

        Returns:
            dict: ``loss``.
        """
        self.check_teacher_driven()
        out = self.encode(inputs)
        return dict(loss=self.head_loss(out['pred'], out['ids_target'], inputs, out['target']))

    @torch.no_grad()
    def reconstruct(self, inputs: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Everything needed to visualise one step, for a batch of images.

        Args:
            inputs (Tensor): Normalised images, B x 3 x H x W.

        Returns:
            dict: ``mask`` B x L (1 = masked), ``ids_masked`` B x M, ``stage_ids`` (ids kept
            after each PTR stage, B x K_s each), ``ids_target`` B x K, ``pred`` B x K x P,
            ``target`` B x K x C, ``similarity`` B x K (cosine of prediction and standardised
            target, feature heads only).
        """
        out = self.encode(inputs)
        if self.head.needs_teacher_tokens:
            out['similarity'] = torch.nn.functional.cosine_similarity(
                out['pred'].float(), standardize(out['target'].float()), dim=-1)
        return out
