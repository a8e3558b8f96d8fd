"""Benchmark one config's training step: time, throughput, peak memory, counted FLOPs."""
import gc
import tempfile
from typing import Dict, List, Optional

import torch

from .builder import (HookDriver, build_model, build_optim_wrapper, infer_img_size,
                      make_batch, make_train_step, num_classes_of, random_teacher_checkpoints)
from .census import OpCensus, sdpa_label
from .devices import mfu
from .flops import count_flops
from .memory import PeakMemoryMeter
from .timing import Progress, Timer, median


def free_memory(device: torch.device) -> None:
    """Collect garbage (and empty the CUDA cache) between configs."""
    gc.collect()
    if device.type == 'cuda':
        torch.cuda.empty_cache()


class TrainBench:
    """A built model, optimizer, batch and step for one config, ready to be timed repeatedly.

    Args:
        name (str): Display name.
        cfg (Config): The config.
        batch_size (int): Images per step.
        device (torch.device): Where to run.
        amp (str): ``'none'``, ``'fp16'`` or ``'bf16'``.
        img_size (int, optional): Input size; defaults to the backbone's ``img_size``.
        random_teachers (bool): Frozen teachers without a checkpoint file get random weights
            (:func:`random_teacher_checkpoints`) instead of failing. Defaults to True.
        compile (bool): ``torch.compile`` the model's ``forward`` (what ``train_step`` calls;
            the optimizer and hooks stay eager). The warm-up steps then include compilation.
            Defaults to False.
    """

    def __init__(self, name: str, cfg, batch_size: int, device: torch.device, amp: str = 'none',
                 img_size: Optional[int] = None, random_teachers: bool = True,
                 compile: bool = False) -> None:
        self.name = name
        self.batch_size = batch_size
        self.device = device
        self.notes = []
        with tempfile.TemporaryDirectory() as tmp:
            if random_teachers:
                replaced = random_teacher_checkpoints(cfg, tmp)
                if replaced:
                    self.notes.append('random weights for frozen teachers ' + ', '.join(replaced))
            self.model = build_model(cfg, device)
        self.model.train()
        self.optim_wrapper = build_optim_wrapper(cfg, self.model, device, amp)
        self.img_size = img_size or infer_img_size(self.model)
        self.compiled = compile
        if compile:
            self.model.forward = torch.compile(self.model.forward)
            self.notes.append('torch.compile(model.forward)')
        data = make_batch(batch_size, self.img_size, num_classes_of(self.model),
                          pin=device.type == 'cuda')
        self.hooks = HookDriver(cfg, self.model)
        if self.hooks.skipped:
            self.notes.append('start-of-training hooks not run: ' + ', '.join(self.hooks.skipped))
        self.step = make_train_step(self.model, self.optim_wrapper, data, self.hooks, device,
                                    amp)

    def num_params(self) -> Dict[str, int]:
        """Trainable and total parameter counts."""
        params = list(self.model.parameters())
        return dict(trainable=sum(p.numel() for p in params if p.requires_grad),
                    total=sum(p.numel() for p in params))

    def flops(self) -> int:
        """FLOPs of one full training step (forward + backward), whole batch."""
        _, flops = count_flops(self.step)
        return flops

    def peak_memory(self) -> Dict:
        """Peak memory of one training step: ``dict(bytes=..., method=...)``."""
        meter = PeakMemoryMeter(self.device)
        with meter.measure([self.model], [self.optim_wrapper.optimizer]):
            self.step()
        return dict(bytes=meter.peak_bytes, start_bytes=meter.start_bytes, method=meter.method)

    def census(self) -> Dict:
        """Host-device syncs and SDPA kernels of one training step (:class:`OpCensus`)."""
        census = OpCensus(self.device)
        with census.watch():
            self.step()
        return census.summary()

    def time(self, warmup: int, steps: int, progress: Optional[Progress] = None) -> List[float]:
        """Durations of ``steps`` timed steps after ``warmup`` untimed ones, seconds."""
        return Timer(self.device, warmup, steps, progress).run(self.step, self.name)

    def close(self) -> None:
        del self.model, self.optim_wrapper, self.step, self.hooks
        free_memory(self.device)


def summarize_train(name: str, spec: str, batch_size: int, times: List[float],
                    flops: Optional[int], memory: Optional[Dict], params: Dict[str, int],
                    img_size: int, notes: Optional[List[str]] = None,
                    census: Optional[Dict] = None, peak_tflops: Optional[float] = None) -> Dict:
    """One result row (JSON-ready) from the raw measurements.

    ``census`` is :meth:`TrainBench.census`'s result; ``peak_tflops`` the device's dense peak
    (:func:`~.devices.peak_tflops`) for the model-FLOP utilisation ``mfu``.
    """
    step = median(times)
    census = census or {}
    return dict(
        name=name,
        config=spec,
        kind='train',
        img_size=img_size,
        batch_size=batch_size,
        step_time_s=step,
        step_times_s=[round(t, 5) for t in times],
        step_time_spread=(max(times) - min(times)) / step if step else None,
        images_per_s=batch_size / step,
        peak_memory_mb=None if memory is None else memory['bytes'] / 2**20,
        step_memory_mb=None if memory is None else
        (memory['bytes'] - memory['start_bytes']) / 2**20,
        memory_method=None if memory is None else memory['method'],
        train_gflops_per_image=None if flops is None else flops / batch_size / 1e9,
        train_tflops_per_s=None if flops is None else flops / step / 1e12,
        mfu=mfu(flops, step, peak_tflops),
        syncs_per_step=census.get('syncs'),
        sync_sites=census.get('sync_sites'),
        cuda_syncs_per_step=census.get('cuda_syncs'),
        cuda_sync_sites=census.get('cuda_sync_sites'),
        sdpa_kernels=census.get('sdpa_kernels'),
        sdpa=sdpa_label(census.get('sdpa_kernels')),
        params_m=params['total'] / 1e6,
        trainable_params_m=params['trainable'] / 1e6,
        notes=notes or [])
