"""PCAE: Progressively Compressed Auto-Encoder."""
from typing import Dict, List, Optional, Union

import torch
from mmpretrain.registry import MODELS

from ..teachers.ema import ema_settings
from ..teachers.ema_teacher import MaskedEMATeacher
from ..utils.targets import patch_pixels
from ..utils.token_reduction import build_token_reduction
from .base import MIMOutput
from .ema_self_supervisor import EMATeacherSelfSupervisor

TARGETS = ('teacher', 'pixels')


@MODELS.register_module()
class PCAE(EMATeacherSelfSupervisor):
    """PCAE pre-training (`paper <https://arxiv.org/abs/2211.13184>`_, ICLR 2023).

    The student encodes the visible patches. The EMA teacher (:class:`MaskedEMATeacher`)
    encodes the MASKED patches and drops, after a few blocks, the tokens most similar to
    their mean (progressive token reduction): 147 -> 73 -> 36 -> 18 for ViT-B/16 at mask 0.75.
    The decoder then predicts only those 18 survivors, and the loss compares them with the
    teacher's standardised features.

    Args:
        backbone (dict): The student :class:`MIMViT`.
        neck (dict): The :class:`PartialDecoder`.
        head (dict): :class:`FeatureCosineHead` (teacher target) or :class:`PartialPixelHead`
            (with ``target='pixels'``).
        teacher (dict): :class:`EMAModel` arguments. Defaults: momentum 0.9999 -> 1.0, cosine,
            per iteration; ``horizon`` instead of ``momentum`` gives the time scale as a
            share of the run (the tiny configs).
        token_reduction (dict): Teacher PTR: ``keep_ratio`` and ``num_stages`` or ``locations``,
            ``mode`` ('similarity' or 'random'). Defaults to 3 stages keeping 0.5.
        target (str): What the survivors are compared with: ``'teacher'`` (its tokens, the
            paper) or ``'pixels'`` (their raw pixels, an ablation). Defaults to ``'teacher'``.
    """

    def __init__(self,
                 backbone: dict,
                 neck: dict,
                 head: dict,
                 teacher: Optional[dict] = None,
                 token_reduction: dict = dict(num_stages=3, keep_ratio=0.5),
                 target: str = 'teacher',
                 pretrained: Optional[str] = None,
                 data_preprocessor: Optional[Union[dict, torch.nn.Module]] = None,
                 init_cfg: Optional[Union[List[dict], dict]] = None) -> None:
        if target not in TARGETS:
            raise ValueError(f'PCAE target must be one of {TARGETS}, got {target!r}')
        super().__init__(
            backbone=backbone,
            neck=neck,
            head=head,
            pretrained=pretrained,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg)
        self.target = target
        reduction = build_token_reduction(token_reduction, self.backbone.num_layers, num_fixed=0)
        if reduction is not None:
            reduction.check(self.backbone.num_masked, self.backbone.num_layers)
        teacher = ema_settings(teacher, momentum=0.9999, end_momentum=1.0)
        self.teacher = MaskedEMATeacher(self.backbone, token_reduction=reduction, **teacher)

    def forward_mim(self, inputs: torch.Tensor) -> MIMOutput:
        """Student on the visible patches, teacher on the masked ones, decoder on the
        teacher's survivors.

        Args:
            inputs (Tensor): Images, B x 3 x H x W.

        Returns:
            MIMOutput: ``pred`` B x K x P and ``target`` (teacher tokens B x K x C, or raw
            pixels) at the survivors ``ids_pred`` B x K; extras: the :class:`TeacherOut`
            (with the ids kept after each PTR stage).
        """
        latent, info = self.backbone(inputs)  # B x (1+V) x C, MaskInfo
        teacher = self.teacher(inputs, info.ids_masked)  # B x K x C at the survivors B x K
        pred = self.neck(latent, info.ids_keep, teacher.ids)  # B x K x P
        if self.target == 'teacher':
            target = teacher.tokens  # B x K x C
        else:
            target = patch_pixels(inputs, teacher.ids, self.backbone.patch_size)  # B x K x ppC
        return MIMOutput(latent=latent, mask=info.mask, ids_keep=info.ids_keep,
                         ids_masked=info.ids_masked, ids_pred=teacher.ids, pred=pred,
                         target=target, pixels=self.target == 'pixels', extras=(teacher, ))

    def loss(self, inputs: torch.Tensor, data_samples: List) -> Dict[str, torch.Tensor]:
        """Cosine loss between the predictions and the teacher's surviving masked tokens.

        Args:
            inputs (Tensor): Images, B x 3 x H x W.
            data_samples (list): Unused.

        Returns:
            dict: ``loss``.
        """
        self.check_teacher_driven()
        out = self.forward_mim(inputs)
        return dict(loss=self.head.loss(out.pred, out.target))
