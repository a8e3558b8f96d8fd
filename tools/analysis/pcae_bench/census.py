"""Which ops of a step stall the host on a GPU, and which attention kernel the step runs.

:class:`OpCensus` watches one step at the dispatcher level (below autograd and autocast, where
``FlopCounterMode`` also sits) and records:

* **host-device syncs**: ops whose result the host must wait for -- ``.item()`` / ``int()`` /
  ``float()`` / ``bool()`` on a tensor (all ``aten._local_scalar_dense``), ops with a
  data-dependent output size (``nonzero``, ``masked_select``, ``unique``, boolean indexing,
  ``repeat_interleave`` by a tensor) and device-to-host copies. Each is counted with the place
  in the Python source that issued it (``file:line``), so a report names the culprit.
  On a GPU only ops on GPU tensors count. On a CPU there is no device to wait for; the census
  then *emulates* the GPU: every such op counts, except those issued from ``torch/optim``
  (PyTorch's optimizers read their step counters, which live on the host even for GPU
  parameters). A CPU run therefore predicts the syncs a GPU run of the same code has.
* **SDPA kernels**: which fused ``scaled_dot_product_attention`` kernel ran (``flash``,
  ``efficient``, ``cudnn``, ``flash_cpu``, ...), and how many SDPA calls fell back to the
  unfused ``math`` path (calls seen at the Python level minus fused kernels dispatched).
"""
import contextlib
import os.path as osp
import traceback
import warnings
from collections import Counter
from typing import Dict, Iterator, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

_aten = torch.ops.aten


def _packets(*names: str) -> set:
    """The aten overload packets among ``names`` that this torch has."""
    return {getattr(_aten, n) for n in names if hasattr(_aten, n)}


# ops whose result the host needs before it can go on (value or output size)
SYNC_PACKETS = _packets('_local_scalar_dense', 'nonzero', 'masked_select', 'unique_consecutive',
                        '_unique', '_unique2', 'unique_dim', 'equal', 'is_nonzero', 'argwhere')
# fused SDPA forward kernels -> short name
SDPA_KERNELS = {
    '_scaled_dot_product_flash_attention': 'flash',
    '_scaled_dot_product_efficient_attention': 'efficient',
    '_scaled_dot_product_cudnn_attention': 'cudnn',
    '_scaled_dot_product_flash_attention_for_cpu': 'flash_cpu',
    '_scaled_dot_product_fused_attention_overrideable': 'overrideable',
}
SDPA_PACKETS = {getattr(_aten, n): k for n, k in SDPA_KERNELS.items() if hasattr(_aten, n)}
_THIS_DIR = osp.dirname(osp.abspath(__file__))
_TORCH_DIR = osp.dirname(osp.abspath(torch.__file__))


def _tensors(args, kwargs) -> List[torch.Tensor]:
    return [t for t in tree_flatten((args, kwargs or {}))[0] if isinstance(t, torch.Tensor)]


def _caller() -> Tuple[str, bool]:
    """``file:line (function)`` of the innermost frame outside torch and this module, and
    whether the op was issued from inside ``torch/optim``."""
    stack = traceback.extract_stack()
    from_optim = any(f'{osp.sep}optim{osp.sep}' in f.filename and f.filename.startswith(_TORCH_DIR)
                     for f in stack)
    for frame in reversed(stack):
        path = osp.abspath(frame.filename)
        if path.startswith(_TORCH_DIR) or path.startswith(_THIS_DIR):
            continue
        parts = path.split(osp.sep)
        short = osp.sep.join(parts[-3:])
        return f'{short}:{frame.lineno} ({frame.name})', from_optim
    return '<torch>', from_optim


class _SdpaCalls(TorchFunctionMode):
    """Counts Python-level ``F.scaled_dot_product_attention`` calls."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func is F.scaled_dot_product_attention:
            self.calls += 1
        return func(*args, **(kwargs or {}))


class OpCensus(TorchDispatchMode):
    """Count host-device syncs and SDPA kernels of the code run inside :meth:`watch`.

    Args:
        device (torch.device | str): The device the model runs on. ``cpu`` emulates a GPU
            (see the module docstring).

    Example::

        census = OpCensus('cuda')
        with census.watch():
            step()
        census.summary()  # {'syncs': 0, 'sync_sites': [], 'sdpa_kernels': {'flash': 24}, ...}
    """

    def __init__(self, device) -> None:
        super().__init__()
        self.device = torch.device(device)
        self.emulated = self.device.type == 'cpu'
        self.syncs: Counter = Counter()
        self.cuda_syncs: Counter = Counter()  # torch's sync debug mode (CUDA only)
        self.kernels: Counter = Counter()
        self._sdpa = _SdpaCalls()

    @contextlib.contextmanager
    def watch(self) -> Iterator['OpCensus']:
        """Context manager: watch everything run inside.

        On CUDA, torch's own sync debugging (``torch.cuda.set_sync_debug_mode('warn')``) is on
        as well: it also sees synchronising calls made inside C++ (e.g. a blocking
        host-to-device copy), which :attr:`cuda_syncs` lists by the Python line that made them.
        """
        cuda = self.device.type == 'cuda'
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always')
            previous = torch.cuda.get_sync_debug_mode() if cuda else None
            if cuda:
                torch.cuda.set_sync_debug_mode('warn')
            try:
                with self._sdpa, self:
                    yield self
            finally:
                if cuda:
                    torch.cuda.set_sync_debug_mode(previous)
        for w in caught:
            if 'synchronizing' in str(w.message):
                self.cuda_syncs[f'{osp.sep.join(w.filename.split(osp.sep)[-3:])}:{w.lineno}'] += 1
            else:  # not ours: pass it on
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)

    # ----------------------------------------------------------------- classification
    def _is_sync(self, func, args, kwargs) -> bool:
        packet = func.overloadpacket
        tensors = _tensors(args, kwargs)
        if packet in SYNC_PACKETS:
            pass
        elif packet is _aten.index and any(
                t is not None and t.dtype in (torch.bool, torch.uint8) for t in args[1]):
            pass  # x[mask]: output size depends on the mask
        elif packet is _aten.repeat_interleave and func is _aten.repeat_interleave.Tensor and (
                kwargs or {}).get('output_size') is None:
            pass
        elif packet in (_aten._to_copy, _aten.copy_):
            return self._is_device_to_host(func, args, kwargs)
        else:
            return False
        if self.emulated:
            return True
        return any(t.device.type != 'cpu' for t in tensors)

    def _is_device_to_host(self, func, args, kwargs) -> bool:
        if self.emulated or not args or not isinstance(args[0], torch.Tensor):
            return False  # on a CPU-only run nothing leaves a device
        if func.overloadpacket is _aten.copy_:  # copy_(dst, src)
            dst, src = args[0], args[1] if len(args) > 1 else None
            return (isinstance(src, torch.Tensor) and src.device.type != 'cpu' and
                    dst.device.type == 'cpu')
        target = (kwargs or {}).get('device')
        return args[0].device.type != 'cpu' and target is not None and \
            torch.device(target).type == 'cpu'

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        packet = func.overloadpacket
        if packet in SDPA_PACKETS:
            self.kernels[SDPA_PACKETS[packet]] += 1
        elif self._is_sync(func, args, kwargs):
            where, from_optim = _caller()
            if not (self.emulated and from_optim):
                self.syncs[(packet.__name__, where)] += 1
        return func(*args, **(kwargs or {}))

    # ----------------------------------------------------------------- results
    @property
    def num_syncs(self) -> int:
        return sum(self.syncs.values())

    def sdpa_kernels(self) -> Dict[str, int]:
        """Fused kernels by name, plus ``math`` for SDPA calls that ran unfused."""
        kernels = dict(self.kernels)
        math_calls = self._sdpa.calls - sum(self.kernels.values())
        if math_calls > 0:
            kernels['math'] = math_calls
        return kernels

    def summary(self, max_sites: int = 8) -> Dict:
        """JSON-ready result: ``syncs``, ``sync_sites`` (most frequent first), SDPA figures."""
        sites = [f'{n}x {op} at {where}' for (op, where), n in self.syncs.most_common(max_sites)]
        out = dict(syncs=self.num_syncs, sync_sites=sites, syncs_emulated=self.emulated,
                   sdpa_calls=self._sdpa.calls, sdpa_kernels=self.sdpa_kernels())
        if self.device.type == 'cuda':
            out['cuda_syncs'] = sum(self.cuda_syncs.values())
            out['cuda_sync_sites'] = [f'{n}x at {where}'
                                      for where, n in self.cuda_syncs.most_common(max_sites)]
        return out


def sdpa_label(kernels: Optional[Dict[str, int]]) -> Optional[str]:
    """Short table cell, e.g. ``flash`` or ``flash 24 / math 2``."""
    if not kernels:
        return None
    if len(kernels) == 1:
        return next(iter(kernels))
    return ' / '.join(f'{k} {v}' for k, v in sorted(kernels.items(), key=lambda kv: -kv[1]))


def probe_sdpa(device, dtype: torch.dtype = torch.bfloat16,
               shape: Tuple[int, int, int, int] = (256, 12, 197, 64),
               repeats: int = 3) -> Dict[str, Dict]:
    """Try every SDPA backend alone on one attention shape (forward + backward).

    Args:
        device (torch.device | str): Where to run.
        dtype (torch.dtype): Query / key / value dtype. Defaults to bf16.
        shape (tuple): ``B x heads x tokens x head dim``. Defaults to ViT-B/16's 197 tokens.
        repeats (int): Timed forward + backward calls per backend (median). Defaults to 3.

    Returns:
        dict: backend name -> ``dict(ok=True, ms=...)`` or ``dict(ok=False, error=...)``,
        plus ``default``: the kernel(s) torch picks by itself for this shape.
    """
    import statistics
    import time

    from torch.nn.attention import SDPBackend, sdpa_kernel
    device = torch.device(device)
    backends = {'flash': 'FLASH_ATTENTION', 'efficient': 'EFFICIENT_ATTENTION',
                'cudnn': 'CUDNN_ATTENTION', 'math': 'MATH'}
    g = torch.Generator(device=device).manual_seed(0)
    q, k, v = (torch.randn(shape, device=device, dtype=dtype, generator=g, requires_grad=True)
               for _ in range(3))

    def sync():
        if device.type == 'cuda':
            torch.cuda.synchronize(device)

    def fwd_bwd():
        F.scaled_dot_product_attention(q, k, v).sum().backward()

    out: Dict[str, Dict] = {}
    for name, attr in backends.items():
        backend = getattr(SDPBackend, attr, None)
        if backend is None:
            out[name] = dict(ok=False, error='not in this torch')
            continue
        try:
            with sdpa_kernel([backend]):
                fwd_bwd()  # warm-up (and the error, if this backend cannot run)
                times = []
                for _ in range(repeats):
                    sync()
                    t0 = time.perf_counter()
                    fwd_bwd()
                    sync()
                    times.append(time.perf_counter() - t0)
            out[name] = dict(ok=True, ms=round(1e3 * statistics.median(times), 3))
        except Exception as e:  # noqa: BLE001 - a backend that cannot run is the answer
            out[name] = dict(ok=False, error=(str(e).strip().splitlines() or ['?'])[0][:160])
    census = OpCensus(device)
    with census.watch():
        fwd_bwd()
    out['default'] = dict(kernels=census.sdpa_kernels(), shape=list(shape), dtype=str(dtype))
    return out
