"""Optimizer constructor that summarises frozen parameters instead of warning for each."""
import logging

from mmengine.logging import MMLogger, print_log
from mmengine.optim import DefaultOptimWrapperConstructor
from mmpretrain.registry import OPTIM_WRAPPER_CONSTRUCTORS
from torch import nn

FROZEN_MSG = 'is skipped since its requires_grad=False'


class _DropFrozenWarnings(logging.Filter):

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if FROZEN_MSG in record.getMessage():
            self.count += 1
            return False
        return True


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class TrainableParamsOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """mmengine's default constructor, logging one line for all frozen parameters.

    Teacher-student methods hold a full frozen copy of the encoder (EMA or pre-trained
    teachers): mmengine would print one warning per frozen tensor (hundreds for ViT-B). Frozen
    tensors never receive gradients, so the optimizer never updates them either way.
    """

    def __call__(self, model: nn.Module):
        logger = MMLogger.get_current_instance()
        drop = _DropFrozenWarnings()
        logger.addFilter(drop)
        try:
            wrapper = super().__call__(model)
        finally:
            logger.removeFilter(drop)
        frozen = [p for p in model.parameters() if not p.requires_grad]
        if frozen:
            print_log(f'{len(frozen)} frozen parameter tensors ({sum(p.numel() for p in frozen):,}'
                      ' values: teachers, fixed position embeddings) get no updates',
                      logger='current', level=logging.INFO)
        return wrapper
