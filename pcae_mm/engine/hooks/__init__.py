from .data_time_hook import DataTimeHook
from .divergence_guard_hook import DivergenceError, DivergenceGuardHook
from .ema_teacher_hook import EMATeacherHook
from .exact_resume_hook import ExactResumeHook
from .knn_eval_hook import KNNEvalHook
from .mim_visualization_hook import MIMVisualizationHook
from .progressive_reconstruction_hook import ProgressiveReconstructionHook
from .safe_checkpoint_hook import SafeCheckpointHook

__all__ = [
    'DataTimeHook', 'DivergenceError', 'DivergenceGuardHook', 'EMATeacherHook',
    'ExactResumeHook', 'KNNEvalHook', 'MIMVisualizationHook', 'ProgressiveReconstructionHook',
    'SafeCheckpointHook'
]
