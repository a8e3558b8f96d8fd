"""Peak memory of a training step, on GPU and on CPU.

* CUDA: ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats`` (what the caching
  allocator handed out to tensors at the worst moment: parameters, gradients, optimizer state,
  activations, temporaries).
* CPU: the same quantity, counted by :class:`LiveTensorTracker`: the bytes of every tensor
  storage alive at the start (parameters, buffers, gradients, optimizer state) plus every
  storage created by an op during the step, minus those freed (a weak-reference finaliser per
  storage); the peak of that sum. Process RSS is NOT used: glibc keeps freed blocks mapped and
  reuses them, so an RSS delta depends on what ran before in the same process (the benchmark
  runs every config in one process); ``tracemalloc`` sees Python objects only. (torch's own
  ``MemTracker`` fails on models with frozen parameters, e.g. a fixed position embedding or an
  EMA teacher.)
"""
import contextlib
import copy
import warnings
import weakref
from typing import Dict, Iterable, List, Optional

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten


class LiveTensorTracker(TorchDispatchMode):
    """Count the bytes of live tensor storages on one device; keep the peak.

    Args:
        device (torch.device): Only storages on this device type count.
        block (int): Round every storage up to a multiple of this many bytes (CUDA's caching
            allocator: 512). Defaults to 1.
    """

    def __init__(self, device: torch.device, block: int = 1) -> None:
        super().__init__()
        self.device_type = torch.device(device).type
        self.block = block
        self.live: Dict[int, int] = {}
        self.current = 0
        self.peak = 0

    def _free(self, key: int) -> None:
        self.current -= self.live.pop(key, 0)

    def track(self, tensor) -> None:
        """Count ``tensor``'s storage if it is a new one on our device."""
        if not isinstance(tensor, torch.Tensor) or tensor.device.type != self.device_type:
            return
        try:
            storage = tensor.untyped_storage()
        except (RuntimeError, NotImplementedError):  # sparse / opaque tensors
            return
        key = storage._cdata
        nbytes = -(-storage.nbytes() // self.block) * self.block
        if key in self.live or nbytes == 0:
            return
        self.live[key] = nbytes
        self.current += nbytes
        self.peak = max(self.peak, self.current)
        weakref.finalize(storage, self._free, key)

    def track_resident(self, modules: Iterable[torch.nn.Module],
                       optimizers: Iterable[torch.optim.Optimizer]) -> None:
        """Count what lives across steps: parameters, gradients, buffers, optimizer state."""
        for module in modules:
            for p in module.parameters():
                self.track(p)
                self.track(p.grad)
            for b in module.buffers():
                self.track(b)
        for opt in optimizers:
            for state in opt.state.values():
                for value in tree_flatten(state)[0]:
                    self.track(value)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            self.track(t)
        return out


class PeakMemoryMeter:
    """Measure the peak tensor memory of the code run inside ``with meter.measure(...)``.

    Args:
        device (torch.device | str): Where the model runs.

    Attributes:
        peak_bytes (int | None): Peak after the last measurement.
        start_bytes (int | None): Tensor memory alive when it started (parameters, gradients,
            optimizer state, ...): ``peak_bytes - start_bytes`` is the step's own peak
            (activations and temporaries), the part that grows with the batch.
        method (str): How it was measured: ``cuda_max_allocated`` or ``live_tensor_peak``.
    """

    def __init__(self, device) -> None:
        self.device = torch.device(device)
        self.peak_bytes: Optional[int] = None
        self.start_bytes: Optional[int] = None
        self.method = 'cuda_max_allocated' if self.device.type == 'cuda' else 'live_tensor_peak'

    @contextlib.contextmanager
    def measure(self, modules: Iterable[torch.nn.Module] = (),
                optimizers: Iterable[torch.optim.Optimizer] = ()):
        """Context manager; sets :attr:`peak_bytes` on exit.

        Args:
            modules: Modules whose parameters, buffers and gradients are resident (CPU
                tracker; CUDA counts every live tensor anyway).
            optimizers: Optimizers whose state is resident (CPU tracker).
        """
        if self.method == 'cuda_max_allocated':
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.start_bytes = int(torch.cuda.memory_allocated(self.device))
            yield self
            torch.cuda.synchronize(self.device)
            self.peak_bytes = int(torch.cuda.max_memory_allocated(self.device))
        else:
            tracker = LiveTensorTracker(self.device)
            tracker.track_resident(modules, optimizers)
            self.start_bytes = tracker.current
            with tracker:
                yield self
            self.peak_bytes = int(tracker.peak)


# --------------------------------------------------------------------------------------------
# Prediction: the same count, on fake tensors (no memory, no GPU)
# --------------------------------------------------------------------------------------------
#: CUDA's caching allocator hands out blocks in multiples of 512 bytes.
CUDA_BLOCK = 512
#: Functions CUDA autocast runs in fp32 (its ``fp32`` cast policy) whose outputs are large in a
#: ViT; CPU autocast leaves them in the low-precision dtype. Emulated for CUDA predictions.
CUDA_FP32_FUNCTIONS = ('layer_norm', 'group_norm', 'softmax', 'log_softmax', 'cosine_similarity')


class SavedTensorMeter:
    """Bytes of the distinct tensor storages autograd saves for backward (the activations),
    parameters excluded; a ``saved_tensors_hooks`` context.

    Args:
        exclude (Iterable[Tensor]): Tensors whose storages are not activations (parameters).
    """

    def __init__(self, exclude: Iterable[torch.Tensor] = ()) -> None:
        self._exclude = {t.untyped_storage()._cdata for t in exclude}
        self.storages: Dict[int, int] = {}

    def _pack(self, tensor):
        try:
            storage = tensor.untyped_storage()
        except (RuntimeError, NotImplementedError):
            return tensor
        if storage._cdata not in self._exclude:
            self.storages[storage._cdata] = storage.nbytes()
        return tensor

    @property
    def bytes(self) -> int:
        return sum(self.storages.values())

    def hooks(self):
        return torch.autograd.graph.saved_tensors_hooks(self._pack, lambda t: t)


@contextlib.contextmanager
def cuda_autocast_policy(enabled: bool = True):
    """Make CPU autocast cast like CUDA autocast for :data:`CUDA_FP32_FUNCTIONS`: inputs to
    fp32, output fp32 (CPU autocast keeps them in fp16 / bf16)."""
    import torch.nn.functional as F
    if not enabled:
        yield
        return
    saved = {name: getattr(F, name) for name in CUDA_FP32_FUNCTIONS}

    def fp32(fn):
        def wrapped(*args, **kwargs):
            if not torch.is_autocast_enabled('cpu'):
                return fn(*args, **kwargs)
            cast = [a.float() if isinstance(a, torch.Tensor) and a.is_floating_point() else a
                    for a in args]
            kw = {k: v.float() if isinstance(v, torch.Tensor) and v.is_floating_point() else v
                  for k, v in kwargs.items()}
            with torch.autocast('cpu', enabled=False):
                return fn(*cast, **kw)
        return wrapped

    try:
        for name, fn in saved.items():
            setattr(F, name, fp32(fn))
        yield
    finally:
        for name, fn in saved.items():
            setattr(F, name, fn)


@contextlib.contextmanager
def _fake_optimizer_steps():
    """torch's Adam / AdamW read their step counters with ``.item()``, which fake tensors
    cannot answer; any positive step gives the same tensors and therefore the same memory."""
    import torch.optim.adam as adam
    from torch._subclasses.fake_tensor import FakeTensor
    original = adam._get_value
    adam._get_value = lambda x: 1.0 if isinstance(x, FakeTensor) else original(x)
    try:
        yield
    finally:
        adam._get_value = original


def _nbytes(tensors, block: int = 1) -> int:
    seen, total = set(), 0
    for t in tensors:
        if t is None:
            continue
        s = t.untyped_storage()
        if s._cdata in seen:
            continue
        seen.add(s._cdata)
        total += -(-s.nbytes() // block) * block
    return total


def _teacher_modules(model) -> List[torch.nn.Module]:
    """Modules the algorithm declares as teachers (replicated under FSDP)."""
    fn = getattr(model, 'fsdp_ignored_modules', None)
    return list(fn()) if callable(fn) else []


@contextlib.contextmanager
def _no_init_info():
    """mmengine's weight init logs which initialiser changed each parameter by comparing
    means (a host read that fake tensors cannot answer); bookkeeping only, skipped."""
    import mmengine.model.base_module as base_module
    import mmengine.model.weight_init as weight_init
    saved = weight_init.update_init_info, base_module.update_init_info
    weight_init.update_init_info = base_module.update_init_info = lambda *a, **k: None
    try:
        yield
    finally:
        weight_init.update_init_info, base_module.update_init_info = saved


def build_fake_model(cfg, random_teachers: bool = True):
    """Build ``cfg.model`` (weights initialised) on fake tensors: no memory, no data.

    Frozen teachers that load a checkpoint at build time (MR-MAE) read a real file: missing
    ones get random weights first (:func:`~.builder.random_teacher_checkpoints`).

    Returns:
        tuple: the ``FakeTensorMode``, the model (its tensors fake) and notes.
    """
    import tempfile

    from mmpretrain.registry import MODELS
    from torch._subclasses.fake_tensor import DataDependentOutputException, FakeTensorMode

    from .builder import _strip_pretrained, random_teacher_checkpoints
    notes = []
    with tempfile.TemporaryDirectory() as tmp:
        if random_teachers:
            replaced = random_teacher_checkpoints(cfg, tmp)  # real files, before faking
            if replaced:
                notes.append('random weights for frozen teachers ' + ', '.join(replaced))
        # builder.build_model without its final .to(device) (a no-op here that fake parameters
        # cannot go through: nn.Module._apply swaps them)
        model_cfg = _strip_pretrained(copy.deepcopy(
            cfg.model.to_dict() if hasattr(cfg.model, 'to_dict') else cfg.model))
        if cfg.get('data_preprocessor') is not None:
            pre = copy.deepcopy(cfg.data_preprocessor)
            model_cfg.setdefault('data_preprocessor',
                                 pre.to_dict() if hasattr(pre, 'to_dict') else pre)
        fake_mode = FakeTensorMode(allow_non_fake_inputs=True)
        try:
            with fake_mode, _fake_optimizer_steps(), _no_init_info(), warnings.catch_warnings():
                # deepcopy (the EMA teacher) asks a fake tensor for its data pointer
                warnings.filterwarnings('ignore', 'Accessing the data pointer of FakeTensor')
                model = MODELS.build(model_cfg)
                model.init_weights()
        except DataDependentOutputException:
            # the constructor reads a value (e.g. MR-MAE the preprocessor's mean / std): build
            # for real, then fake every parameter and buffer (real memory for a moment)
            model = MODELS.build(copy.deepcopy(model_cfg))
            model.init_weights()
            _fakeify(model, fake_mode)
            notes.append('built on real tensors, then faked')
    return fake_mode, model, notes


def _fakeify(model: torch.nn.Module, fake_mode) -> None:
    """Replace every parameter and buffer of ``model`` by a fake tensor of the same shape,
    dtype and ``requires_grad`` (shared tensors stay shared)."""
    memo = {}
    for module in model.modules():
        for name, p in list(module._parameters.items()):
            if p is not None:
                if id(p) not in memo:
                    memo[id(p)] = torch.nn.Parameter(fake_mode.from_tensor(p.detach()),
                                                     requires_grad=p.requires_grad)
                module._parameters[name] = memo[id(p)]
        for name, b in list(module._buffers.items()):
            if b is not None:
                if id(b) not in memo:
                    memo[id(b)] = fake_mode.from_tensor(b)
                module._buffers[name] = memo[id(b)]


def predict_training_memory(cfg, batch_size: int, amp: str = 'none', device_kind: str = 'cuda',
                            fsdp_world_size: Optional[int] = None,
                            img_size: Optional[int] = None,
                            random_teachers: bool = True,
                            autocast_scope: str = 'forward') -> Dict:
    """Predict the peak memory of one training step by running it on fake tensors.

    The config's model, optimizer (constructor and parameter groups included) and custom hooks
    are built inside torch's ``FakeTensorMode``: every tensor has its shape, dtype and storage
    but no data. One warm-up step creates the optimizer state (AdamW: two fp32 moments per
    trainable parameter); the second step runs under :class:`LiveTensorTracker`, exactly as
    the CPU measurement of the benchmark does on real tensors, so the prediction is the
    allocator-level peak of live tensor storages (``torch.cuda.max_memory_allocated`` on a
    GPU). On real tensors the same count agrees with glibc's in-use bytes within a few percent
    (tests/test_tools/test_memory_estimate.py).

    What the prediction does not see: the CUDA context and cuBLAS / cuDNN workspaces (outside
    or beside ``max_memory_allocated``), allocator fragmentation (``memory_reserved`` minus
    allocated), and kernel-internal scratch. For CUDA (``device_kind='cuda'``) each storage is
    rounded up to the caching allocator's 512-byte blocks and layer norm / softmax run in fp32
    under autocast as CUDA's autocast policy does (:func:`cuda_autocast_policy`).

    Mixed precision: ``amp='fp16'|'bf16'`` runs the step under autocast (the loss scaler of
    fp16 adds no tensor of note: it unscales in place). ``fsdp_world_size=W`` predicts the
    FSDP recipe (``configs/_base_/strategies/fsdp_bf16.py``) per GPU: the student's fp32
    parameters, gradients and AdamW state sharded W ways, the teachers whole in fp32, the
    step's activations from a bf16 copy of the student (FSDP's ``param_dtype``) plus the
    unsharded bf16 parameters of the root unit and of two transformer blocks (the one
    computing and the one prefetched).

    Args:
        cfg (Config): The config.
        batch_size (int): Images per step (per GPU).
        amp (str): ``'none'``, ``'fp16'`` or ``'bf16'``.
        device_kind (str): ``'cuda'`` or ``'cpu'``: which allocator / autocast to mimic.
        fsdp_world_size (int, optional): Predict the FSDP layout for this many GPUs.
        img_size (int, optional): Input size (default: the backbone's).
        random_teachers (bool): Frozen teachers without a checkpoint get random weights.
        autocast_scope (str): ``'forward'``: autocast around the data preprocessor and the
            loss forward, as mmengine's ``AmpOptimWrapper`` (its cast-weight cache is freed
            before backward); ``'step'``: around the whole ``train_step`` as benchmark.py's
            bf16 path (the low-precision weight copies live through backward).

    Returns:
        dict: bytes of ``params_trainable``, ``params_frozen``, ``teachers`` (part of frozen),
        ``buffers``, ``grads``, ``optimizer_state``, ``activations_saved`` (saved for
        backward at the end of the forward), ``resident`` (alive between steps), ``step``
        (the step's own peak above that) and ``peak`` (= what ``max_memory_allocated``
        reports), plus ``notes``.
    """
    if amp not in ('none', 'fp16', 'bf16'):
        raise ValueError(f"amp must be 'none', 'fp16' or 'bf16', got {amp!r}")
    if device_kind not in ('cuda', 'cpu'):
        raise ValueError(f"device_kind must be 'cuda' or 'cpu', got {device_kind!r}")
    fsdp = fsdp_world_size is not None
    if fsdp and amp != 'none':
        raise ValueError('FSDP does its own bf16 mixed precision: use amp=none with '
                         'fsdp_world_size')
    block = CUDA_BLOCK if device_kind == 'cuda' else 1
    fake_mode, model, notes = build_fake_model(cfg, random_teachers)
    out = _sizes(model, block)
    if fsdp:  # FSDP computes in bf16 (param_dtype): the student, not the replicated teachers
        replicated = {id(p) for t in _teacher_modules(model) for p in t.parameters()}
        for p in model.parameters():
            if id(p) not in replicated:
                p.data = p.data.to(torch.bfloat16)
    with fake_mode, _fake_optimizer_steps(), cuda_autocast_policy(device_kind == 'cuda'):
        step = TrainingStep(cfg, model, batch_size, amp, img_size, fake_mode,
                            input_dtype=torch.bfloat16 if fsdp else None,
                            autocast_scope=autocast_scope)
        step()  # the optimizer state
        tracker = LiveTensorTracker(torch.device('cpu'), block)
        tracker.track_resident([model], [step.optim_wrapper.optimizer])
        tracker.track(step.data['inputs'])
        start = tracker.current
        meter = SavedTensorMeter(model.parameters())
        with tracker:
            step(meter)
    notes += step.notes
    out['optimizer_state'] = _nbytes(step.optimizer_state(), block)
    out['grads'] = 0  # freed by zero_grad(set_to_none) between steps; inside `step`
    out['activations_saved'] = meter.bytes
    step_bytes = tracker.peak - start
    resident = start - _nbytes([step.data['inputs']], block)
    if fsdp:
        w = int(fsdp_world_size)
        fp32_trainable = 4 * out['num_params_trainable']
        out.update(params_trainable=fp32_trainable // w, optimizer_state=2 * fp32_trainable // w,
                   grads=fp32_trainable // w,
                   fsdp_gathered=2 * (_root_params(model) + 2 * _largest_block_params(model)))
        resident = (out['params_trainable'] + out['params_frozen'] + out['buffers'] +
                    out['optimizer_state'])
        # the fake step ran a bf16 student whose parameters stayed resident (not counted in
        # `step`); FSDP gathers the root unit and two blocks at a time; the fp32 gradient
        # shards are counted whole (an upper bound: at the peak, early in the backward pass,
        # few exist)
        step_bytes += out['fsdp_gathered'] + out['grads']
        notes.append(f'FSDP, {w} GPU(s): fp32 parameters, gradients and AdamW state / {w}; '
                     'teachers whole in fp32; activations of the bf16 student; gradients '
                     'counted whole (upper bound)')
    out.update(resident=resident, step=step_bytes, peak=resident + step_bytes,
               batch_size=batch_size, img_size=step.img_size, amp=amp, device_kind=device_kind,
               fsdp_world_size=fsdp_world_size, notes=list(dict.fromkeys(notes)))
    return out


def measure_training_memory(cfg, batch_size: int, amp: str = 'none',
                            img_size: Optional[int] = None,
                            random_teachers: bool = True,
                            autocast_scope: str = 'forward') -> Dict:
    """The same training step as :func:`predict_training_memory` (``device_kind='cpu'``), on
    real tensors on the CPU, measured twice: by :class:`LiveTensorTracker` (what the
    prediction counts, on real storages) and by glibc's allocator (:class:`MallocPeak`, in-use
    bytes after every op: independent of torch's bookkeeping).

    Returns:
        dict: ``resident`` and ``peak`` (tracker), ``step`` (tracker, peak minus resident),
        ``malloc_step`` (allocator, peak above the start of the step; None without glibc).
    """
    import gc
    import tempfile

    from .builder import build_model, random_teacher_checkpoints
    with tempfile.TemporaryDirectory() as tmp:
        if random_teachers:
            random_teacher_checkpoints(cfg, tmp)
        model = build_model(cfg, torch.device('cpu'))
    step = TrainingStep(cfg, model, batch_size, amp, img_size, autocast_scope=autocast_scope)
    step()  # the optimizer state
    gc.collect()
    tracker = LiveTensorTracker(torch.device('cpu'))
    tracker.track_resident([model], [step.optim_wrapper.optimizer])
    tracker.track(step.data['inputs'])
    start = tracker.current
    with tracker:
        step()
    out = dict(resident=start - _nbytes([step.data['inputs']]), step=tracker.peak - start,
               malloc_step=None)
    out['peak'] = out['resident'] + out['step']
    if MallocPeak.available():
        gc.collect()
        with MallocPeak() as m:
            step()
        out['malloc_step'] = m.peak
    return out


class TrainingStep:
    """One training iteration of a config as the benchmark runs it (custom hooks, the data
    preprocessor, the loss forward under autocast, backward, the optimizer step), built with
    a plain ``OptimWrapper`` (a loss scaler adds no tensor of note: it unscales in place).

    Args:
        cfg (Config): The config.
        model (nn.Module): The built model (real or fake tensors).
        batch_size (int): Images per step.
        amp (str): ``'none'``, ``'fp16'`` or ``'bf16'``: the autocast dtype.
        img_size (int, optional): Input size (default: the backbone's).
        fake_mode (FakeTensorMode, optional): Fake the batch's images with it.
        input_dtype (torch.dtype, optional): Cast the preprocessed images to it (FSDP).
        autocast_scope (str): ``'forward'`` (mmengine's AmpOptimWrapper) or ``'step'``
            (benchmark.py's bf16 path: backward and the optimizer step inside autocast).
    """

    def __init__(self, cfg, model, batch_size: int, amp: str = 'none',
                 img_size: Optional[int] = None, fake_mode=None,
                 input_dtype: Optional[torch.dtype] = None,
                 autocast_scope: str = 'forward') -> None:
        from mmengine.optim import build_optim_wrapper

        from .builder import HookDriver, infer_img_size, make_batch
        if autocast_scope not in ('forward', 'step'):
            raise ValueError(f"autocast_scope must be 'forward' or 'step', got {autocast_scope!r}")
        self.model = model.train()
        self.input_dtype = input_dtype
        self.autocast_scope = autocast_scope
        self.notes: List[str] = []
        self.dtype = {'fp16': torch.float16, 'bf16': torch.bfloat16}.get(amp)
        self.img_size = img_size or infer_img_size(model)
        if fake_mode is not None:
            from torch._subclasses.fake_tensor import unset_fake_temporarily
            with unset_fake_temporarily():  # real images, then faked
                data = make_batch(batch_size, self.img_size, 1000)
            data['inputs'] = fake_mode.from_tensor(data['inputs'])
        else:
            data = make_batch(batch_size, self.img_size, 1000)
        self.data = data
        ow = cfg.get('optim_wrapper')
        ow = copy.deepcopy(ow.to_dict() if hasattr(ow, 'to_dict') else ow)
        for key in ('loss_scale', 'dtype', 'use_fsdp', 'device'):
            ow.pop(key, None)
        ow['type'] = 'OptimWrapper'
        self.optim_wrapper = build_optim_wrapper(model, ow)
        try:
            self.hooks = HookDriver(cfg, model)
            if self.hooks.skipped:
                self.notes.append('start-of-training hooks not run: ' +
                                  ', '.join(self.hooks.skipped))
        except Exception as e:  # noqa: BLE001 - hooks act in place; memory does not need them
            self.hooks = None
            self.notes.append(f'custom hooks not run ({type(e).__name__})')

    def optimizer_state(self) -> List[torch.Tensor]:
        return [v for s in self.optim_wrapper.optimizer.state.values()
                for v in tree_flatten(s)[0] if isinstance(v, torch.Tensor)]

    def __call__(self, meter: Optional[SavedTensorMeter] = None) -> None:
        model, ow = self.model, self.optim_wrapper
        if self.hooks is not None:
            self.hooks.before_iter()
        saved = meter.hooks() if meter is not None else contextlib.nullcontext()
        autocast = torch.autocast('cpu', dtype=self.dtype, enabled=self.dtype is not None)
        outer = autocast if self.autocast_scope == 'step' else contextlib.nullcontext()
        inner = autocast if self.autocast_scope == 'forward' else contextlib.nullcontext()
        with outer:
            with inner:
                batch = model.data_preprocessor(self.data, True)
                if self.input_dtype is not None:  # FSDP's MixedPrecision casts the inputs
                    batch['inputs'] = batch['inputs'].to(self.input_dtype)
                with saved:
                    losses = model(**batch, mode='loss')
            loss, _ = model.parse_losses(losses)
            ow.update_params(loss)
        if self.hooks is not None:
            try:
                self.hooks.after_iter()
            except Exception as e:  # noqa: BLE001 - e.g. a host read of a fake counter
                self.notes.append(f'after-iteration hooks not run ({type(e).__name__})')


class MallocPeak:
    """glibc's in-use heap bytes (``mallinfo2``: ``uordblks + hblkhd``), sampled after every
    op of the code inside ``with``; :attr:`peak` is the most above the start.

    torch's CPU allocator takes tensor memory from ``malloc``, so this measures the step at
    the allocator, independently of the tensor bookkeeping of :class:`LiveTensorTracker`
    (it also sees Python objects, which a training step barely adds).
    """

    def __init__(self) -> None:
        self._info = _mallinfo2()
        self.peak = 0
        self._mode = None

    @staticmethod
    def available() -> bool:
        return _mallinfo2() is not None

    def _in_use(self) -> int:
        m = self._info()
        return m.uordblks + m.hblkhd

    def __enter__(self) -> 'MallocPeak':
        outer = self
        start = self._in_use()

        class _Sample(TorchDispatchMode):

            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                out = func(*args, **(kwargs or {}))
                outer.peak = max(outer.peak, outer._in_use() - start)
                return out

        self._mode = _Sample()
        self._mode.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._mode.__exit__(*exc)


def _mallinfo2():
    """``mallinfo2`` of the C library, or None (not glibc >= 2.33)."""
    import ctypes
    import ctypes.util

    class MallInfo2(ctypes.Structure):
        _fields_ = [(n, ctypes.c_size_t) for n in (
            'arena', 'ordblks', 'smblks', 'hblks', 'hblkhd', 'usmblks', 'fsmblks', 'uordblks',
            'fordblks', 'keepcost')]

    try:
        libc = ctypes.CDLL(ctypes.util.find_library('c') or 'libc.so.6')
        fn = libc.mallinfo2
    except (OSError, AttributeError):
        return None
    fn.restype = MallInfo2
    return fn


def _sizes(model, block: int) -> Dict:
    teachers = _teacher_modules(model)
    params = list(model.parameters())
    trainable = [p for p in params if p.requires_grad]
    frozen = [p for p in params if not p.requires_grad]
    return dict(params_trainable=_nbytes(trainable, block), params_frozen=_nbytes(frozen, block),
                teachers=_nbytes([p for t in teachers for p in list(t.parameters()) +
                                  list(t.buffers())], block),
                buffers=_nbytes(model.buffers(), block),
                num_params_trainable=sum(p.numel() for p in trainable),
                num_params_frozen=sum(p.numel() for p in frozen))


def _largest_block_params(model) -> int:
    """Parameters of the largest transformer block of the student (an FSDP unit)."""
    from pcae_mm.engine.fsdp import DEFAULT_BLOCKS
    teachers = {id(m) for t in _teacher_modules(model) for m in t.modules()}
    sizes = [sum(p.numel() for p in m.parameters()) for m in model.modules()
             if type(m).__name__ in DEFAULT_BLOCKS and id(m) not in teachers]
    return max(sizes, default=0)


def _root_params(model) -> int:
    """Student parameters outside the transformer blocks (FSDP's root unit)."""
    from pcae_mm.engine.fsdp import DEFAULT_BLOCKS
    teachers = {id(m) for t in _teacher_modules(model) for m in t.modules()}
    in_blocks = {id(p) for m in model.modules() if type(m).__name__ in DEFAULT_BLOCKS
                 and id(m) not in teachers for p in m.parameters()}
    return sum(p.numel() for p in model.parameters()
               if p.requires_grad and id(p) not in in_blocks)
