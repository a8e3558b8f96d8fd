from .ema_teacher_hook import EMATeacherHook
from .mim_visualization_hook import MIMVisualizationHook
from .progressive_reconstruction_hook import ProgressiveReconstructionHook

__all__ = ['EMATeacherHook', 'MIMVisualizationHook', 'ProgressiveReconstructionHook']
