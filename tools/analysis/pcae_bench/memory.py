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
import weakref
from typing import Dict, Iterable, Optional

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten


class LiveTensorTracker(TorchDispatchMode):
    """Count the bytes of live tensor storages on one device; keep the peak.

    Args:
        device (torch.device): Only storages on this device type count.
    """

    def __init__(self, device: torch.device) -> None:
        super().__init__()
        self.device_type = torch.device(device).type
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
        if key in self.live or storage.nbytes() == 0:
            return
        self.live[key] = storage.nbytes()
        self.current += storage.nbytes()
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
