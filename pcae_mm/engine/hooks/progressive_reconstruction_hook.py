"""Hook that tells PR-MIM's progressive reconstruction how far training has gone."""
from typing import List

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmpretrain.registry import HOOKS

from ...models.utils.partial_reconstruction import PartialReconstruction
from .run_length import run_length


def find_partial_reconstructions(model) -> List[PartialReconstruction]:
    """Every PartialReconstruction inside ``model`` (unwrapping DDP / FSDP wrappers)."""
    if is_model_wrapper(model):
        model = model.module
    return [m for m in model.modules() if isinstance(m, PartialReconstruction)]


@HOOKS.register_module()
class ProgressiveReconstructionHook(Hook):
    """Set ``progress = iter / max_iters`` on every :class:`PartialReconstruction` before each
    training iteration, so the supervised share of thrown patches follows its schedule (and a
    resumed run continues it from the resumed iteration).
    """

    priority = 'ABOVE_NORMAL'
    _total_iters = 0

    def before_train(self, runner) -> None:
        if not find_partial_reconstructions(runner.model):
            raise RuntimeError('ProgressiveReconstructionHook is configured but the model has '
                               'no PartialReconstruction (partial_reconstruction=None?)')
        self._total_iters = run_length(runner)[0]  # the run's own length, kept by --resume

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        for part in find_partial_reconstructions(runner.model):
            part.set_progress(runner.iter / max(self._total_iters or runner.max_iters, 1))
