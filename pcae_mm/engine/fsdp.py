"""FSDP for the teacher-student algorithms: a replicated-teacher wrapper, a block wrap policy and
the full-parameter view the EMA update reads (issue 13).

Layout (configs/_base_/strategies/fsdp_bf16.py):

* The **student** (backbone, decoder, heads) is sharded by FSDP: every transformer block is its
  own FSDP unit (:func:`vit_block_wrap_policy`), the rest (patch embedding, position
  embedding, cls / mask tokens, norms, linear heads) is in the root unit.
* The **teachers** are replicated, left out of FSDP (``ignored_modules``): the EMA teacher of
  PCAE / SdAE / PR-MIM-SdAE and MR-MAE's frozen target generator. Each algorithm declares them
  with ``fsdp_ignored_modules()``; the wrapper never needs to know what they are. Their
  forward needs no all-gather and the EMA stays exact: :func:`full_parameters` gathers the
  student's full fp32 parameters once per EMA step (``summon_full_params``), and the teacher
  averages toward them exactly as without FSDP.

Why not shard the teacher too: the root-level parameters of student and teacher (patch
embedding, pos_embed, cls_token, final norm) land at different offsets of the root flat
parameter, so each rank's teacher shard would not hold the same elements as its student shard
and a shard-wise EMA would average unrelated numbers, unless student and teacher were each their
own FSDP unit with identical layouts. The replicated teacher costs one all-gather of the student
per EMA step and a full fp32 copy of the teacher on every rank (no gradients, no optimizer
state: ViT-L 1.2 GB).
"""
from contextlib import contextmanager
from typing import Iterable, List, Optional, Sequence, Union

import torch
from mmengine._strategy import FSDPStrategy
from mmengine.logging import print_log
from mmengine.model.wrappers import MMFullyShardedDataParallel
from mmengine.registry import FUNCTIONS, STRATEGIES
from mmpretrain.registry import MODEL_WRAPPERS
from torch import nn
from torch.distributed.fsdp import FullyShardedDataParallel

#: Block classes :func:`vit_block_wrap_policy` wraps by default: mmpretrain's ViT block (used by
#: MIMViT, MCMAEViT, PartialDecoder and the frozen teachers' VisionTransformer).
DEFAULT_BLOCKS = ('TransformerEncoderLayer', )


@FUNCTIONS.register_module()
def vit_block_wrap_policy(module: nn.Module,
                          recurse: bool,
                          nonwrapped_numel: int,
                          block_types: Sequence[str] = DEFAULT_BLOCKS,
                          min_num_params: int = 0) -> bool:
    """FSDP auto-wrap policy: every transformer block is its own FSDP unit, whatever its size.

    Matching by class name keeps configs plain (``auto_wrap_policy=dict(
    type='vit_block_wrap_policy')``) and makes the tiny CPU models wrap their blocks exactly as
    ViT-L does (a size threshold would wrap nothing in a 64-wide model).

    Args:
        module (nn.Module): Candidate module (FSDP's policy protocol).
        recurse (bool): FSDP asks whether to descend into ``module``: always.
        nonwrapped_numel (int): Parameters of ``module`` not wrapped yet.
        block_types (Sequence[str]): Class names to wrap. Defaults to
            ``('TransformerEncoderLayer',)``.
        min_num_params (int): Also require this many parameters. Defaults to 0.
    """
    if recurse:
        return True
    return type(module).__name__ in tuple(block_types) and nonwrapped_numel >= min_num_params


def _resolve_device(device_id: Union[int, str, torch.device, None]
                    ) -> Union[int, torch.device, None]:
    """``device_id`` as FSDP takes it; CPU when an integer (mmengine passes LOCAL_RANK) meets a
    machine without CUDA (FSDP then runs on CPU with gloo)."""
    if isinstance(device_id, str):
        return torch.device(device_id)
    if isinstance(device_id, int) and not torch.cuda.is_available():
        return torch.device('cpu')
    return device_id


@MODEL_WRAPPERS.register_module()
class TeacherReplicatedFSDP(MMFullyShardedDataParallel):
    """mmengine's FSDP wrapper that keeps the model's declared teachers out of the sharding.

    The modules returned by ``module.fsdp_ignored_modules()`` (when the model defines it) and
    those named in ``ignored_modules`` stay whole on every rank: FSDP neither shards, gathers nor
    casts them; they are moved to the FSDP device here (FSDP does not move ignored modules).

    Args:
        module (nn.Module): The algorithm.
        device_id (int | str | torch.device, optional): FSDP's device. An integer on a machine
            without CUDA means CPU (so the same config runs on GPUs and, with gloo, on CPU);
            ``'cpu'`` forces CPU.
        ignored_modules (Iterable[str | nn.Module], optional): More modules to replicate, by
            name (``'teacher'``) or object.
        **kwargs: :class:`mmengine.model.MMFullyShardedDataParallel` arguments
            (``auto_wrap_policy``, ``mixed_precision``, ``use_orig_params`` ...).
    """

    def __init__(self,
                 module: nn.Module,
                 device_id: Union[int, str, torch.device, None] = None,
                 ignored_modules: Optional[Iterable[Union[str, nn.Module]]] = None,
                 **kwargs) -> None:
        device_id = _resolve_device(device_id)
        ignored = replicated_modules(module, ignored_modules)
        if device_id is not None:
            device = (device_id if isinstance(device_id, torch.device) else
                      torch.device('cuda', device_id))
            for m in ignored:
                m.to(device)
        if ignored:
            kwargs['ignored_modules'] = ignored
        super().__init__(module, device_id=device_id, **kwargs)
        names = {id(m): n for n, m in module.named_modules()}
        units = [n for n, m in self.named_modules()
                 if isinstance(m, FullyShardedDataParallel) and m is not self]
        print_log(
            f'FSDP: {len(units) + 1} units (root + {len(units)} wrapped modules, e.g. '
            f'{units[:2]}); replicated, not sharded: {[names.get(id(m)) for m in ignored]}',
            logger='current')


def replicated_modules(module: nn.Module,
                       extra: Optional[Iterable[Union[str, nn.Module]]] = None
                       ) -> List[nn.Module]:
    """The modules to keep out of FSDP: ``module.fsdp_ignored_modules()`` plus ``extra``."""
    declared = getattr(module, 'fsdp_ignored_modules', None)
    found: List[nn.Module] = list(declared()) if callable(declared) else []
    named = dict(module.named_modules())
    for m in extra or ():
        if isinstance(m, str):
            if m not in named:
                raise KeyError(f'ignored_modules: the model has no submodule {m!r}')
            m = named[m]
        found.append(m)
    unique: List[nn.Module] = []
    for m in found:
        if all(m is not u for u in unique):
            unique.append(m)
    return unique


@contextmanager
def _cpu_optim_gather_fix():
    """Work around a torch FSDP bug that corrupts full optimizer state dicts on CPU.

    ``torch.distributed.fsdp._optim_utils._allgather_orig_param_states`` gathers every state
    (``exp_avg``, ``exp_avg_sq``) of a flat parameter into ONE reused buffer and keeps views of
    it; on GPU the ``offload_to_cpu`` copy detaches them, on CPU ``.cpu()`` returns the same
    views, so every state ends up holding the last one gathered (AdamW's ``exp_avg`` ==
    ``exp_avg_sq``; seen with torch 2.14). Copying each gathered state before it is unflattened
    fixes it; nothing changes on GPU (the patched function is only called while saving).
    """
    from torch.distributed.fsdp import _optim_utils
    original = getattr(_optim_utils, '_unflatten_orig_param_states', None)
    if original is None:  # another torch layout: nothing to fix
        yield
        return

    def copying(fsdp_param_info, output_states, state_name, *args, **kwargs):
        for state in output_states.values():
            value = state.get(state_name)
            if torch.is_tensor(value) and value.device.type == 'cpu':
                state[state_name] = value.clone()
        return original(fsdp_param_info, output_states, state_name, *args, **kwargs)

    _optim_utils._unflatten_orig_param_states = copying
    try:
        yield
    finally:
        _optim_utils._unflatten_orig_param_states = original


@STRATEGIES.register_module()
class TeacherFSDPStrategy(FSDPStrategy):
    """mmengine's :class:`~mmengine._strategy.FSDPStrategy` with :class:`TeacherReplicatedFSDP`
    as its default wrapper and optimizer-state save / load that work on torch 2.x (and CPU).

    mmengine 0.10.7 calls ``FSDP.optim_state_dict_to_load(state_dict, model, optimizer)``, the
    torch 1.x argument order; torch 2.x takes ``(model, optimizer, state_dict)``, so ``--resume``
    under FSDP fails with ``TypeError: unhashable type: 'dict'``. Saving works around a torch
    bug on CPU (:func:`_cpu_optim_gather_fix`). Arguments as
    :class:`~mmengine._strategy.FSDPStrategy`.
    """

    def __init__(self, *, model_wrapper: Optional[dict] = None, **kwargs) -> None:
        model_wrapper = dict(model_wrapper or {})
        model_wrapper.setdefault('type', 'TeacherReplicatedFSDP')
        super().__init__(model_wrapper=model_wrapper, **kwargs)

    def optim_state_dict(self) -> dict:
        """The optimizer state dict (full on rank 0 with ``state_dict_cfg='full'``); on CPU
        with torch's gather bug worked around (:func:`_cpu_optim_gather_fix`)."""
        with _cpu_optim_gather_fix():
            return super().optim_state_dict()

    def load_optim_state_dict(self, state_dict: dict) -> None:
        """Load a (full or local) optimizer state dict saved by :meth:`optim_state_dict`."""
        optim_state_dict = FullyShardedDataParallel.optim_state_dict_to_load(
            self.model, self.optim_wrapper.optimizer, state_dict)
        self.optim_wrapper.load_state_dict(optim_state_dict)


@contextmanager
def full_parameters(model: nn.Module):
    """Inside: the student's parameters are whole (full, fp32) on every rank.

    A no-op without FSDP. Under FSDP it is :meth:`FullyShardedDataParallel.summon_full_params`
    (``writeback=False``: read only) on the root, a collective: every rank must enter it. The
    parameter names then carry FSDP's ``_fsdp_wrapped_module.`` segments
    (:func:`~pcae_mm.models.teachers.ema.canonical_name` drops them).
    """
    if isinstance(model, FullyShardedDataParallel):
        with FullyShardedDataParallel.summon_full_params(model, writeback=False):
            yield
    else:
        yield


def check_strategy_config(cfg) -> None:
    """Refuse mmengine's plain ``FSDPStrategy`` for a model with teachers, before building.

    mmengine's docs show ``strategy=dict(type='FSDPStrategy', model_wrapper=dict(
    auto_wrap_policy=...))``. With it, FSDP shards the EMA teacher / frozen target generator
    together with the student (and mmengine 0.10.7's optimizer-state load fails on torch 2.x):
    the run dies deep inside the teacher with an ``IndexError``. The shipped strategy base
    (``configs/_base_/strategies/fsdp_bf16.py``: :class:`TeacherFSDPStrategy` with
    :class:`TeacherReplicatedFSDP`) keeps the teachers whole.

    Raises:
        ConfigCheckError: naming the strategy, the model and the fix.
    """
    from ..utils.config_check import ConfigCheckError
    strategy = cfg.get('strategy')
    if not isinstance(strategy, dict) or 'type' not in strategy:
        return
    from mmengine.registry import MODELS as ROOT_MODELS
    from mmengine.registry import MODEL_WRAPPERS as ROOT_WRAPPERS
    from mmengine.registry import STRATEGIES as ROOT_STRATEGIES
    scope = cfg.get('default_scope') or 'mmengine'

    def get(root, name):
        if not isinstance(name, str):
            return name
        registry = root._search_child(scope) or root
        try:
            return registry.get(name)
        except Exception:  # noqa: BLE001 - unknown names are reported by the build
            return None

    strategy_cls = get(ROOT_STRATEGIES, strategy['type'])
    if not (isinstance(strategy_cls, type) and issubclass(strategy_cls, FSDPStrategy)):
        return
    wrapper = dict(strategy.get('model_wrapper') or {})
    wrapper_type = wrapper.get('type', 'TeacherReplicatedFSDP'
                               if issubclass(strategy_cls, TeacherFSDPStrategy)
                               else 'MMFullyShardedDataParallel')
    wrapper_cls = get(ROOT_WRAPPERS, wrapper_type)
    model = cfg.get('model') or {}
    model_cls = get(ROOT_MODELS, model.get('type'))
    if model_cls is None or not callable(getattr(model_cls, 'fsdp_ignored_modules', None)):
        return  # no teachers: nothing to keep out of the sharding
    problems = []
    if not issubclass(strategy_cls, TeacherFSDPStrategy):
        problems.append(f"strategy type {strategy['type']!r} (mmengine's FSDPStrategy: its "
                        'optimizer-state load fails on torch 2.x, so --resume breaks)')
    if not (isinstance(wrapper_cls, type) and issubclass(wrapper_cls, TeacherReplicatedFSDP)):
        problems.append(f'model wrapper {wrapper_type!r} (it shards the teacher together with '
                        'the student, while the EMA update needs the teacher whole on every '
                        'rank: such runs die with an IndexError deep inside the teacher)')
    if problems:
        raise ConfigCheckError(
            f"{model_cls.__name__} has teachers that FSDP must keep whole on every rank, but "
            f"this config's strategy uses {' and '.join(problems)}. List the shipped strategy "
            "base after the recipe: _base_ = [RECIPE, '../_base_/strategies/fsdp_bf16.py'] "
            "(TeacherFSDPStrategy + TeacherReplicatedFSDP; set the auto-wrap policy, mixed "
            "precision and state_dict_cfg there), or --cfg-options "
            "strategy.type=TeacherFSDPStrategy strategy.model_wrapper.type=TeacherReplicatedFSDP.")
