"""Base classes that every pcae_mm algorithm builds on."""
from typing import List, Optional, Union

import torch
from mmpretrain.models.selfsup import BaseSelfSupervisor

from ..teachers.ema_teacher import EMATeacher


class MIMSelfSupervisor(BaseSelfSupervisor):
    """Self-supervisor whose ``tensor`` mode returns plain (unmasked) backbone features."""

    def extract_feat(self, inputs: torch.Tensor):
        """Backbone features without masking (``mode='tensor'``)."""
        return self.backbone(inputs, mask=False)

    def head_loss(self, pred: torch.Tensor, ids: torch.Tensor, inputs: torch.Tensor,
                  target: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The head's loss for predictions ``pred`` (B x K x P) at patch ids ``ids`` (B x K)."""
        return self.head.loss(pred, target=target, images=inputs, ids=ids)


class EMATeacherSelfSupervisor(MIMSelfSupervisor):
    """A self-supervisor with an EMA copy of its backbone as teacher.

    The teacher is re-synchronised with the student right after weight initialisation, so at
    step 0 it equals the student (the official PCAE code only copies it under DDP, and SdAE's
    never does). :class:`~pcae_mm.engine.hooks.EMATeacherHook` calls :meth:`momentum_update`.

    Args:
        teacher (dict): Keyword arguments of :class:`EMATeacher` (momentum, end_momentum,
            schedule, update_by, interval).
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
        self.teacher.sync(self.backbone)

    def momentum_update(self) -> None:
        """One EMA step of the teacher toward the current student backbone."""
        self.teacher.update_parameters(self.backbone)

    def check_teacher_driven(self) -> None:
        """Fail loudly when training without the hook that updates the teacher."""
        if self.training and self.teacher.total_updates is None:
            raise RuntimeError(
                f'{type(self).__name__} trains an EMA teacher but nothing drives it: add '
                "custom_hooks=[dict(type='EMATeacherHook')] to the config")

    @torch.no_grad()
    def teacher_forward(self, *args, **kwargs):
        """Run the teacher backbone's :meth:`encode_subset` without autograd."""
        return self.teacher.module.encode_subset(*args, **kwargs)
