from .ema import EMAModel
from .ema_teacher import EMATeacher, FoldedEMATeacher, MaskedEMATeacher, TeacherOut
from .frozen_teacher import FrozenTeacher, FrozenTeachers

__all__ = [
    'EMAModel', 'EMATeacher', 'FoldedEMATeacher', 'MaskedEMATeacher', 'TeacherOut',
    'FrozenTeacher', 'FrozenTeachers'
]
