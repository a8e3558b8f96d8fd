"""Resume a run exactly where it stopped (issue 15): RNG states, data order, model identity."""
import random
from typing import Optional

import numpy as np
import torch
from mmengine.dist import all_gather_object, get_rank, get_world_size
from mmengine.hooks import CheckpointHook, Hook
from mmengine.model import is_model_wrapper
from mmengine.runner import EpochBasedTrainLoop
from mmpretrain.registry import HOOKS
from torch.distributed.fsdp import FullyShardedDataParallel
from torch.utils.data import DataLoader

from ...utils.checkpoint import CheckpointError
from .run_length import rescale_checkpoint


def capture_rng_state() -> dict:
    """The global RNG states (torch, CUDA when initialised, numpy, python), weights-only
    loadable: tensors, ints and strings only."""
    key, pos, has_gauss, cached = np.random.get_state()[1:]
    state = dict(
        torch=torch.get_rng_state(),
        numpy=dict(key=torch.from_numpy(np.asarray(key, dtype=np.int64)), pos=int(pos),
                   has_gauss=int(has_gauss), cached_gaussian=float(cached)),
        python=list(random.getstate()[1]),
        python_version=random.getstate()[0],
        python_gauss=random.getstate()[2],
    )
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict) -> None:
    torch.set_rng_state(state['torch'])
    npy = state['numpy']
    np.random.set_state(('MT19937', npy['key'].numpy().astype(np.uint32), npy['pos'],
                         npy['has_gauss'], npy['cached_gaussian']))
    random.setstate((state['python_version'], tuple(state['python']), state['python_gauss']))
    cuda = state.get('cuda')
    if cuda is not None and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)


def model_identity(model) -> dict:
    """What a checkpoint must match to be resumed: the algorithm and its architecture."""
    model = model.module if is_model_wrapper(model) else model
    backbone = getattr(model, 'backbone', None)
    arch = type(backbone).__name__ if backbone is not None else '-'
    embed = getattr(backbone, 'embed_dims', None)
    layers = getattr(backbone, 'num_layers', None)
    if embed is not None:
        arch += f'(embed_dims={embed}' + (f', num_layers={layers})' if layers else ')')
    return dict(algorithm=type(model).__name__, architecture=arch)


def run_shape(runner) -> dict:
    """The run's shape: per-process batch size, number of processes, iterations per epoch."""
    loop = getattr(runner, '_train_loop', None)  # built: during training (not a config dict)
    loader = getattr(loop, 'dataloader', None) if not isinstance(loop, dict) else None
    shape = dict(world_size=get_world_size())
    if isinstance(loader, DataLoader):
        shape['batch_size'] = loader.batch_size
        try:
            shape['iters_per_epoch'] = len(loader)
        except TypeError:
            pass
    return shape


def ema_step_keys(model) -> list:
    """State-dict keys of the update counters of per-iteration EMA teachers in ``model``."""
    from ...models.teachers.ema import EMAModel, canonical_name
    model = model.module if is_model_wrapper(model) else model
    return [canonical_name(f'{name}.steps') for name, m in model.named_modules()
            if isinstance(m, EMAModel) and getattr(m, 'update_by', 'iter') == 'iter']


def _identity_from_cfg_text(text: str) -> Optional[dict]:
    """Algorithm name of a checkpoint written before pcae_mm stored its identity."""
    try:
        from mmengine.config import Config
        cfg = Config.fromstring(text, file_format='.py')
        return dict(algorithm=str(cfg.model.type).split('.')[-1], architecture=None)
    except Exception:  # noqa: BLE001 - best effort on old checkpoints
        return None


class _ReplayingIterator:
    """Wraps an iteration-based loop's data iterator: restores a pending RNG state right
    before the batch that follows the checkpoint (after the resume's data skipping)."""

    def __init__(self, iterator, hook: 'ExactResumeHook') -> None:
        self.iterator = iterator
        self.hook = hook
        self.calls = 0

    def __iter__(self):
        return self

    def __next__(self):
        if self.hook._pending is not None and self.calls >= self.hook._apply_at:
            self.hook._apply_pending()
        self.calls += 1
        return next(self.iterator)

    def __getattr__(self, name):
        return getattr(self.iterator, name)


@HOOKS.register_module()
class ExactResumeHook(Hook):
    """Make ``--resume`` continue a run exactly as if it had not stopped.

    * Every checkpoint holds the RNG states (torch, CUDA, numpy, python) at the moment it is
      written, and the data sampler's seed. A resumed run restores them right before the
      batch that follows the checkpoint (for iteration-based loops: after mmengine skips the
      batches already trained). The uninterrupted run restores the same state at the same
      point, so anything drawing random numbers between a save and the next batch (a
      validation loop, a kNN hook) cannot make the two differ.
    * Every checkpoint records the algorithm and architecture (``meta.pcae_mm``); resuming a
      checkpoint of another algorithm or architecture is refused, naming both.

    With ``randomness=dict(seed=..., deterministic=True)``, ``num_workers=0`` (or workers that
    are not persistent) and one process, N epochs + ``--resume`` to M epochs is bit-identical
    to M epochs straight (weights, EMA teacher, optimizer state, losses). Multi-process runs
    gather every rank's states (one ``all_gather_object`` per checkpoint, in the
    ``after_train_epoch`` / ``after_train_iter`` that precedes the save) and each rank gets its
    own back, when the resumed run has as many processes.

    * Every checkpoint records the run's shape (``meta.pcae_mm``: per-process batch size,
      number of processes, iterations per epoch). Resuming with another shape (batch size,
      number of GPUs, dataset size) would keep the iteration-counted schedules (learning rate,
      EMA momentum) at the old pace: refused, naming both shapes, unless ``allow_reshape``
      (``tools/train.py --resume-reshape``); then the loop's iteration counter, the
      iteration-based parameter schedulers, the run length and the EMA update counters are
      converted to the new iterations per epoch
      (:func:`~.run_length.rescale_checkpoint`): the run continues at the same point of its
      schedules, counted in epochs. Checkpoints written before the shape was recorded resume
      with a warning.

    Args:
        allow_reshape (bool): Accept a resume with another shape and convert the schedules.
            Defaults to False.
    """

    priority = 'VERY_HIGH'

    def __init__(self, allow_reshape: bool = False) -> None:
        self.allow_reshape = allow_reshape
        self._pending: Optional[dict] = None
        self._apply_at = 0
        self._iterator: Optional[_ReplayingIterator] = None
        self._captured: Optional[list] = None  # every rank's state, for the coming save
        self._captured_at = -1

    # -------------------------------------------------------------------- saving
    def _will_save(self, runner, epoch_end: bool) -> bool:
        """Whether the checkpoint hook saves at the end of this iteration / epoch."""
        ck = next((h for h in getattr(runner, 'hooks', []) if isinstance(h, CheckpointHook)),
                  None)
        if ck is None or ck.by_epoch != epoch_end:
            return False
        if epoch_end:
            return ck.every_n_epochs(runner, ck.interval, ck.save_begin) or (
                ck.save_last and ck.is_last_train_epoch(runner))
        return ck.every_n_train_iters(runner, ck.interval, ck.save_begin) or (
            ck.save_last and ck.is_last_train_iter(runner))

    def _capture_before_save(self, runner, epoch_end: bool) -> None:
        """On every rank, right before the checkpoint hook saves: each rank's own state
        becomes its replay point, and rank 0 collects them all for the file."""
        if not self._will_save(runner, epoch_end):
            return
        state = capture_rng_state()
        self._captured = all_gather_object(state) if get_world_size() > 1 else [state]
        self._captured_at = runner.iter
        self._set_pending(state, resumed=False)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        self._capture_before_save(runner, epoch_end=False)

    def after_train_epoch(self, runner) -> None:
        self._capture_before_save(runner, epoch_end=True)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        states, self._captured = self._captured, None
        if states is not None and self._captured_at != runner.iter:
            states = None  # captured for a save that did not happen (non-finite weights)
        if states is None:  # a save this hook did not foresee: rank 0's state only
            states = [capture_rng_state()]
            self._set_pending(states[0], resumed=False)
        checkpoint['rng_state'] = states[0]
        if len(states) > 1:
            checkpoint['rng_state_per_rank'] = states
        sampler = getattr(getattr(runner, 'train_dataloader', None), 'sampler', None)
        checkpoint['data_state'] = dict(sampler_seed=getattr(sampler, 'seed', None))
        checkpoint.setdefault('meta', {})['pcae_mm'] = dict(model_identity(runner.model),
                                                            **run_shape(runner))

    def _set_pending(self, state: dict, resumed: bool) -> None:
        self._pending = state
        if self._iterator is not None and not resumed:
            self._apply_at = self._iterator.calls

    def _apply_pending(self) -> None:
        if self._pending is not None:
            restore_rng_state(self._pending)
        self._pending = None

    # ------------------------------------------------------------------- resuming
    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if not getattr(runner, '_resume', False):
            return  # load_from: weights only, a new run
        self._check_identity(runner, checkpoint)
        self._check_shape(runner, checkpoint)
        state = checkpoint.get('rng_state')
        per_rank = checkpoint.get('rng_state_per_rank') or ([state] if state else [])
        if state is None:
            runner.logger.warning(
                'the checkpoint holds no RNG state (written before pcae_mm saved it): the '
                'resumed run continues correctly but will not repeat an uninterrupted run '
                'bit for bit')
        elif len(per_rank) == get_world_size():
            self._pending = per_rank[get_rank()]
        else:
            runner.logger.warning(
                f'the checkpoint holds the RNG states of {len(per_rank)} process(es), this run '
                f'has {get_world_size()}: each process restarts its random stream from the seed '
                '(the resumed run is correct but not a bit-exact continuation)')
        seed = (checkpoint.get('data_state') or {}).get('sampler_seed')
        sampler = getattr(getattr(runner, 'train_dataloader', None), 'sampler', None)
        if seed is not None and sampler is not None and getattr(sampler, 'seed', seed) != seed:
            runner.logger.info(f'data sampler seed restored from the checkpoint: {seed}')
            sampler.seed = seed

    def _check_identity(self, runner, checkpoint: dict) -> None:
        meta = checkpoint.get('meta') or {}
        saved = meta.get('pcae_mm') or _identity_from_cfg_text(meta.get('cfg', ''))
        current = model_identity(runner.model)
        if saved is None:
            return
        source = getattr(runner, '_load_from', None) or 'the checkpoint'
        if saved['algorithm'] != current['algorithm']:
            raise CheckpointError(
                f"cannot resume {source}: it was made by algorithm {saved['algorithm']!r}, this "
                f"config builds {current['algorithm']!r}. Resume with the config that made it, "
                'or start a new run (load_from=CHECKPOINT loads weights only).')
        state = checkpoint.get('state_dict') or {}
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        # FSDP: the local tensors are flat shards (their shapes say nothing); FSDP's own
        # load_state_dict then checks the full shapes
        own = {} if isinstance(runner.model, FullyShardedDataParallel) else model.state_dict()
        wrong = [k for k, v in state.items()
                 if k in own and hasattr(v, 'shape') and tuple(v.shape) != tuple(own[k].shape)]
        missing = [k for k, _ in model.named_parameters() if k in own and k not in state]
        if (saved.get('architecture') and saved['architecture'] != current['architecture']) \
                or wrong or missing:
            detail = (f'{len(wrong)} tensors of other shapes, e.g. {wrong[:2]}; ' if wrong else
                      '') + (f'{len(missing)} parameters missing from it, e.g. {missing[:2]}'
                             if missing else '')
            raise CheckpointError(
                f"cannot resume {source}: it was made by {saved['algorithm']} with architecture "
                f"{saved.get('architecture') or '(see its config)'}, this config builds "
                f"{current['algorithm']} with architecture {current['architecture']}"
                + (f' ({detail})' if detail else '') + '. Resume with the config that made it.')

    def _check_shape(self, runner, checkpoint: dict) -> None:
        """Refuse (or, with ``allow_reshape``, convert) a resume with another run shape."""
        meta = checkpoint.get('meta') or {}
        saved = dict(meta.get('pcae_mm') or {})
        now = run_shape(runner)
        old_ipe = saved.get('iters_per_epoch')
        recorded = old_ipe is not None
        epoch, it = meta.get('epoch'), meta.get('iter')
        if old_ipe is None and isinstance(epoch, int) and epoch > 0 and isinstance(it, int) \
                and it % epoch == 0:
            old_ipe = it // epoch  # an older checkpoint, saved at the end of an epoch
        new_ipe = now.get('iters_per_epoch')
        diffs = [f'{what} {saved[key]} -> {now[key]}' for key, what in (
            ('batch_size', 'batch size per process'), ('world_size', 'processes'))
            if saved.get(key) is not None and now.get(key) is not None
            and saved[key] != now[key]]
        epoch_loop = isinstance(getattr(runner, '_train_loop', None), EpochBasedTrainLoop)
        if epoch_loop and old_ipe and new_ipe and old_ipe != new_ipe:
            diffs.append(f'iterations per epoch {old_ipe} -> {new_ipe}')
        if not diffs:
            return
        source = getattr(runner, '_load_from', None) or 'the checkpoint'
        if not self.allow_reshape:
            what = ('the learning-rate and EMA schedules are counted in iterations: continued '
                    'as they are, they would run at the old pace (a distorted schedule)'
                    if epoch_loop else 'each iteration would see another number of samples '
                    'than before')
            if not recorded:
                runner.logger.warning(
                    f'resuming {source} with another run shape ({"; ".join(diffs)}; the '
                    f'checkpoint predates shape records, so this is not refused): {what}. '
                    'Pass --resume-reshape to convert the schedules.')
                return
            raise CheckpointError(
                f'cannot resume {source} as it is: this run has another shape than the run that '
                f'wrote it ({"; ".join(diffs)}), and {what}. Resume with the checkpoint\'s '
                f"shape (train_dataloader.batch_size={saved.get('batch_size')}, "
                f"{saved.get('world_size')} process(es)), or pass --resume-reshape to continue "
                'with the new shape: the iteration-based schedules are then converted to the '
                'new iterations per epoch (same position and length in epochs).')
        if epoch_loop and old_ipe and new_ipe and old_ipe != new_ipe:
            done = rescale_checkpoint(checkpoint, int(old_ipe), int(new_ipe),
                                      ema_step_keys(runner.model))
            runner.logger.warning(
                f'--resume-reshape: resuming {source} with a new shape ({"; ".join(diffs)}); '
                f'converted to {new_ipe} iterations per epoch: {"; ".join(done)}')
        else:
            runner.logger.warning(
                f'--resume-reshape: resuming {source} with a new shape ({"; ".join(diffs)}); '
                + ('the iteration-based loop keeps its schedules (counted in iterations)'
                   if not epoch_loop else 'nothing to convert'))

    # ------------------------------------------------------------------- training
    def before_train(self, runner) -> None:
        loop = getattr(runner, 'train_loop', None)
        iterator = getattr(loop, 'dataloader_iterator', None)
        if iterator is not None and not isinstance(iterator, _ReplayingIterator):
            self._iterator = _ReplayingIterator(iterator, self)
            loop.dataloader_iterator = self._iterator
            # a resumed loop first skips the `iter` batches already trained
            self._apply_at = int(getattr(loop, 'iter', 0))

    def before_train_epoch(self, runner) -> None:
        if self._iterator is None:  # epoch-based loop: the next batch is drawn after this hook
            self._apply_pending()
