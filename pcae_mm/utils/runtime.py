"""Config adjustments shared by tools/train.py and tools/test.py, and how a launched tool ends
(:func:`exit_process`)."""
import atexit
import os
import os.path as osp
import sys
import threading
import warnings
from copy import deepcopy
from typing import NoReturn, Union

import torch
from mmengine.config import Config, ConfigDict

DATALOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def check_data_roots(cfg: Config) -> None:
    """Raise FileNotFoundError naming the config key when a dataset folder is missing."""
    for field in DATALOADERS:
        loader = cfg.get(field)
        if not loader:
            continue
        datasets = [loader.get('dataset', {})]
        while datasets:
            ds = datasets.pop()
            datasets += list(ds.get('datasets', [])) + ([ds['dataset']] if 'dataset' in ds else [])
            root = ds.get('data_root')
            if root and '://' not in str(root) and not osp.isdir(root):
                raise FileNotFoundError(
                    f"{field}.dataset.data_root '{root}' does not exist. Prepare the dataset "
                    '(ImageNet layout: <root>/train/<class>/<img>, optional <root>/meta/train.txt) '
                    f"or pass --cfg-options {field}.dataset.data_root=PATH")


def adapt_to_device(cfg: Config, amp: bool = False) -> Config:
    """Make a GPU recipe runnable where there is no CUDA device, saying so.

    * ``AmpOptimWrapper`` (mmengine's asserts a GPU): by default fp32 ``OptimWrapper`` with a
      warning, so a shipped recipe smoke-tests on a laptop at full precision. With ``amp=True``
      (``tools/train.py --amp``) the REAL mixed-precision path instead:
      :class:`~pcae_mm.engine.optimizers.DeviceAmpOptimWrapper` on the CPU, i.e. CPU autocast
      (fp16 unless the config sets ``dtype``) and a dynamic ``torch.amp.GradScaler('cpu')``
      with the config's ``loss_scale``: the same scaling, skipping and scale updates as on a
      GPU. (fp16 on a CPU is slower than fp32; it is there to run the GPU recipe's numerics.)
    * Distributed runs on CPU: gloo backend, DDP without ``device_ids``.

    Args:
        cfg (Config): The config, changed in place.
        amp (bool): The user asked for mixed precision explicitly. Defaults to False.
    """
    if torch.cuda.is_available():
        return cfg
    ow = cfg.get('optim_wrapper')
    if ow is not None and ow.get('type') == 'AmpOptimWrapper':
        if amp:
            ow.type = 'DeviceAmpOptimWrapper'
            ow.device = 'cpu'
            print(f"no CUDA device: --amp trains with CPU autocast ({ow.get('dtype') or 'float16'})"
                  f" and a real dynamic loss scaler (DeviceAmpOptimWrapper, loss_scale="
                  f"{ow.get('loss_scale', 'dynamic')})")
        else:
            warnings.warn('no CUDA device: the config asks for AMP (AmpOptimWrapper), which '
                          'needs a GPU; training in fp32 with OptimWrapper instead (pass --amp '
                          'for CPU autocast with a real loss scaler: DeviceAmpOptimWrapper)')
            ow.type = 'OptimWrapper'
            ow.pop('loss_scale', None)
            ow.pop('dtype', None)
    if cfg.get('launcher', 'none') != 'none':
        cfg.env_cfg = cfg.get('env_cfg', ConfigDict())
        cfg.env_cfg.setdefault('dist_cfg', ConfigDict())
        if cfg.env_cfg.dist_cfg.get('backend', 'nccl') == 'nccl':
            cfg.env_cfg.dist_cfg.backend = 'gloo'
        wrapper = cfg.get('model_wrapper_cfg') or ConfigDict(type='MMDistributedDataParallel')
        wrapper.device_ids = None
        wrapper.setdefault('broadcast_buffers', False)
        cfg.model_wrapper_cfg = wrapper
        # mmengine's pytorch launcher calls torch.cuda.set_device(local_rank) unconditionally.
        torch.cuda.set_device = lambda *args, **kwargs: None
    return cfg


def prepare_compile(cfg: Config) -> None:
    """With ``cfg.compile`` (mmengine's ``torch.compile`` switch: ``True`` or
    ``dict(backend=..., mode=...)``) compile the model's forward, not mmengine's whole
    ``train_step`` (whose optimizer step TorchDynamo cannot trace and whose iteration counter
    recompiles it every step): add :class:`~pcae_mm.engine.torch_compile.CompileForwardHook`.
    """
    if not cfg.get('compile'):
        return
    hooks = list(cfg.get('custom_hooks') or [])
    if not any(h.get('type') == 'CompileForwardHook' for h in hooks):
        hooks.append(dict(type='CompileForwardHook'))
    cfg.custom_hooks = hooks


def set_dataloader_defaults(cfg: Config, no_pin_memory: bool = False,
                            no_persistent_workers: bool = False) -> None:
    """mmpretrain's dataloader defaults, made valid for ``num_workers=0``."""
    defaults = ConfigDict(
        pin_memory=torch.cuda.is_available(),
        persistent_workers=True,
        collate_fn=dict(type='default_collate'))
    for field in DATALOADERS:
        if cfg.get(field) is None:
            continue
        loader = deepcopy(defaults)
        loader.update(cfg[field])
        if no_pin_memory:
            loader.pin_memory = False
        if no_persistent_workers or not loader.get('num_workers', 0):
            loader.persistent_workers = False
        cfg[field] = loader


def default_work_dir(config_path: str) -> str:
    return osp.join('./work_dirs', osp.splitext(osp.basename(config_path))[0])


def local_rank_env(local_rank: int) -> None:
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(local_rank)


#: default hooks mmengine's Runner knows by name (it accepts ``None`` only for these)
MMENGINE_DEFAULT_HOOKS = ('runtime_info', 'timer', 'sampler_seed', 'logger', 'param_scheduler',
                          'checkpoint')


def drop_disabled_hooks(cfg: Config) -> None:
    """Let ``default_hooks.<name>=None`` turn off pcae_mm's extra default hooks
    (``divergence_guard``, ``exact_resume``): mmengine's Runner asserts on ``None`` for any name
    but its own six."""
    hooks = cfg.get('default_hooks')
    if not hooks:
        return
    for name in [k for k, v in hooks.items() if v is None and k not in MMENGINE_DEFAULT_HOOKS]:
        hooks.pop(name)


def exit_process(status: Union[int, str, None] = 0, barrier: bool = False) -> NoReturn:
    """End a launched script: ``sys.exit(status)``, made safe for the processes of a
    distributed launch.

    In a process that holds a ``torch.distributed`` process group, the group is destroyed (after
    a barrier with ``barrier=True``: only after a run that finished on every rank, else the
    others would wait there), the ``atexit`` handlers run (log files flushed, DataLoader workers
    stopped), and the process ends with ``os._exit``, skipping the interpreter teardown.

    Why (found with gdb on the core of an aborted launch): a gloo worker thread drops the work
    object of the last collective just after the caller's ``wait()`` returned. Its destructor
    releases a Python object (``at::ThreadLocalState`` -> ``SafePyObject``) and so takes the
    GIL; during the teardown Python ends a thread that asks for the GIL with ``pthread_exit``,
    whose unwinding through that C++ destructor calls ``std::terminate``. The process dies with
    "terminate called without an active exception" (SIGABRT) and ``torchrun`` reports a launch
    that succeeded as failed. A barrier and ``destroy_process_group()`` do not close the window
    (the DDP wrapper keeps the group and its threads alive); skipping the teardown does.

    Args:
        status: as for ``sys.exit``: an exit code, or a message printed to stderr (exit code 1).
        barrier: wait for every rank before destroying the group.
    """
    import torch.distributed as dist
    if not (dist.is_available() and dist.is_initialized()):
        sys.exit(status)
    if barrier:
        dist.barrier()
    dist.destroy_process_group()
    if isinstance(status, str):
        print(status, file=sys.stderr)
        code = 1
    else:
        code = int(status or 0)
    shutdown = getattr(threading, '_shutdown', None)  # what the teardown does first: join
    if shutdown is not None:  # the Python threads that are not daemons
        shutdown()
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
