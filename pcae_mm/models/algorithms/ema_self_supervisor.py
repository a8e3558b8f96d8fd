"""The plumbing PCAE and SdAE share: an EMA teacher set to the student at step 0 and driven
by :class:`~pcae_mm.engine.hooks.EMATeacherHook`."""
from typing import List

import torch

from ..teachers.ema_teacher import EMATeacher
from .base import MIMSelfSupervisor


class EMATeacherSelfSupervisor(MIMSelfSupervisor):
    """A self-supervisor with an EMA copy of its backbone as ``self.teacher``.

    The subclass builds the teacher (a :class:`MaskedEMATeacher` or :class:`FoldedEMATeacher`
    of ``self.backbone``) in its ``__init__``. It is re-synchronised with the student right
    after weight initialisation, so at step 0 it equals the student (the official PCAE code
    only copies it under DDP, and SdAE's never does); ``teacher=dict(init='random')`` gives it
    its own random init instead, as the official SdAE code.
    :class:`~pcae_mm.engine.hooks.EMATeacherHook` calls :meth:`momentum_update`.
    """

    teacher: EMATeacher

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
