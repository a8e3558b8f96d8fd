from .ema_teacher import EMATeacher
from .frozen_teacher import FrozenTeacher, FrozenTeachers  # noqa: F401

__all__ = ['EMATeacher']
