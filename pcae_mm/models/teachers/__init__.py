from .ema import EMAModel
from .ema_teacher import EMATeacher, TeacherOut
from .frozen_teacher import FrozenTeacher, FrozenTeachers  # noqa: F401

__all__ = ['EMAModel', 'EMATeacher', 'TeacherOut']
