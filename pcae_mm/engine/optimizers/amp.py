"""mmengine's ``AmpOptimWrapper`` on every device torch autocasts, the CPU included."""
from contextlib import contextmanager
from typing import Optional, Union

import torch
from mmengine.device import get_device
from mmengine.optim import AmpOptimWrapper, OptimWrapper
from mmpretrain.registry import OPTIM_WRAPPERS
from torch import nn

#: Autocast dtype when the config gives none: fp16 everywhere, what ``AmpOptimWrapper`` uses on a
#: GPU (``torch.get_autocast_gpu_dtype()``), so the dynamic loss scale is exercised on a CPU too.
DEFAULT_DTYPE = torch.float16


@OPTIM_WRAPPERS.register_module()
class DeviceAmpOptimWrapper(AmpOptimWrapper):
    """``AmpOptimWrapper`` with the device made explicit: the same autocast + dynamic loss
    scaling on CUDA and on a CPU.

    mmengine 0.10.7's ``AmpOptimWrapper`` asserts a GPU (it builds ``torch.cuda.amp.GradScaler``
    and mmengine's ``autocast``, which accepts only bf16 on a CPU). torch itself autocasts on
    CPUs (fp16 and bf16) and has ``torch.amp.GradScaler('cpu')``. This subclass only changes
    the device: the scaler is ``torch.amp.GradScaler(device)`` (``ShardedGradScaler(device)``
    with ``use_fsdp=True``), the context ``torch.autocast(device, dtype)``; ``backward``,
    ``step`` (unscale, clip, skip on overflow, update the scale), ``state_dict`` and
    ``load_state_dict`` are mmengine's. A checkpoint written by either wrapper resumes with the
    other.

    ``tools/train.py --amp`` uses it on a machine without CUDA (the shipped recipes'
    ``AmpOptimWrapper`` otherwise falls back to fp32 there, see
    :func:`pcae_mm.utils.runtime.adapt_to_device`); a config may also name it directly.

    Args:
        loss_scale (float | str | dict): ``'dynamic'`` (GradScaler defaults: init 2**16,
            growth x2 after 2000 good steps, backoff x0.5 on overflow), a float (static
            scale) or GradScaler keyword arguments (``init_scale``, ``growth_factor``,
            ``backoff_factor``, ``growth_interval``). Defaults to ``'dynamic'``.
        dtype (str | torch.dtype, optional): Autocast dtype; defaults to float16 on every
            device (:data:`DEFAULT_DTYPE`).
        use_fsdp (bool): Use torch's ``ShardedGradScaler``. Defaults to False.
        device (str, optional): ``'cuda'``, ``'cpu'``...; defaults to mmengine's
            ``get_device()`` (the GPU when there is one).
        **kwargs: :class:`mmengine.optim.OptimWrapper` arguments.
    """

    def __init__(self,
                 loss_scale: Union[str, float, dict] = 'dynamic',
                 dtype: Union[str, torch.dtype, None] = None,
                 use_fsdp: bool = False,
                 device: Optional[str] = None,
                 **kwargs) -> None:
        OptimWrapper.__init__(self, **kwargs)  # AmpOptimWrapper.__init__ asserts a GPU
        self.device_type = torch.device(device or get_device()).type
        self._scale_update_param = None
        if use_fsdp:
            from torch.distributed.fsdp.sharded_grad_scaler import ShardedGradScaler

            def scaler_type(**kw):
                return ShardedGradScaler(device=self.device_type, **kw)
        else:

            def scaler_type(**kw):
                return torch.amp.GradScaler(self.device_type, **kw)

        if loss_scale == 'dynamic':
            self.loss_scaler = scaler_type()
        elif isinstance(loss_scale, float):
            self._scale_update_param = loss_scale
            self.loss_scaler = scaler_type(init_scale=loss_scale)
        elif isinstance(loss_scale, dict):
            self.loss_scaler = scaler_type(**loss_scale)
        else:
            raise TypeError('loss_scale must be a float, a dict of GradScaler arguments or '
                            f"'dynamic', got {loss_scale!r}")
        if isinstance(dtype, str):
            if dtype not in self.valid_dtypes:
                raise ValueError(f'dtype must be one of {self.valid_dtypes}, got {dtype!r}')
            dtype = getattr(torch, dtype)
        if dtype is not None and not isinstance(dtype, torch.dtype):
            raise TypeError(f'dtype must be None, a str or a torch.dtype, got {dtype!r}')
        self.cast_dtype = dtype or DEFAULT_DTYPE

    @contextmanager
    def optim_context(self, model: nn.Module):
        """Autocast to :attr:`cast_dtype` on this wrapper's device (plus mmengine's gradient
        accumulation context)."""
        with OptimWrapper.optim_context(self, model), torch.autocast(
                self.device_type, dtype=self.cast_dtype):
            yield
