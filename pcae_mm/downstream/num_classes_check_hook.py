"""Fail before the first iteration when a head has fewer outputs than the dataset has classes."""
from typing import List, Optional, Tuple

from mmengine.hooks import Hook
from mmengine.logging import MMLogger
from mmengine.model import is_model_wrapper
from mmpretrain.registry import HOOKS


def dataset_num_classes(dataset) -> Tuple[Optional[int], str]:
    """Number of classes a dataset's labels can take, and where that number came from.

    Uses the largest ground-truth label + 1 when the dataset lists its labels
    (``get_gt_labels``, mmpretrain), else ``len(metainfo['classes'])`` (mmdet, mmseg: their
    labels index that list).
    """
    while hasattr(dataset, 'dataset') or hasattr(dataset, 'datasets'):
        dataset = dataset.dataset if hasattr(dataset, 'dataset') else dataset.datasets[0]
    if hasattr(dataset, 'get_gt_labels'):
        labels = dataset.get_gt_labels()
        if len(labels):
            return int(max(labels)) + 1, 'largest label + 1'
    classes = getattr(dataset, 'metainfo', {}).get('classes')
    if classes:
        return len(classes), "len(metainfo['classes'])"
    return None, 'unknown'


def model_num_classes(model) -> List[Tuple[str, int]]:
    """``(module name, num_classes)`` of every module with an int ``num_classes`` attribute,
    RPN heads (one objectness class) excepted."""
    if is_model_wrapper(model):
        model = model.module
    found = []
    for name, module in model.named_modules():
        n = getattr(module, 'num_classes', None)
        if isinstance(n, int) and not isinstance(n, bool) and 'rpn' not in name.lower():
            found.append((name or type(model).__name__, n))
    return found


@HOOKS.register_module()
class NumClassesCheckHook(Hook):
    """Check every head's ``num_classes`` against the train / val / test dataset.

    Fewer outputs than classes raises ``ValueError`` naming the module and the dataset (it would
    otherwise fail later with an index error inside the loss, or silently mis-score); more
    outputs only warns (the extra logits are never a target). From mmdet / mmseg configs:
    ``custom_hooks = [dict(type='mmpretrain.NumClassesCheckHook')]``.
    """

    priority = 'VERY_HIGH'

    def _check(self, runner, loader, split: str) -> None:
        n, source = dataset_num_classes(loader.dataset)
        if n is None:
            return
        logger = MMLogger.get_current_instance()
        for name, k in model_num_classes(runner.model):
            if k < n:
                raise ValueError(
                    f'{name}.num_classes={k} but the {split} dataset has {n} classes ({source}, '
                    f'{type(loader.dataset).__name__}): set num_classes={n} in the model config')
            if k > n:
                logger.warning(f'{name}.num_classes={k} > {n} classes in the {split} dataset '
                               f'({source}); the extra outputs are never trained as targets')

    def before_train(self, runner) -> None:
        self._check(runner, runner.train_dataloader, 'train')

    def before_val(self, runner) -> None:
        self._check(runner, runner.val_dataloader, 'val')

    def before_test(self, runner) -> None:
        self._check(runner, runner.test_dataloader, 'test')
