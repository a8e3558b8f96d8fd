from .ema_teacher_hook import EMATeacherHook
from .mim_visualization_hook import MIMVisualizationHook

__all__ = ['EMATeacherHook', 'MIMVisualizationHook']
