"""Peak dense bf16 throughput of known GPUs, for model-FLOP utilisation (MFU).

MFU = counted training FLOPs per step / median step time / the device's peak. The FLOPs are
the aten-level matmul / convolution / attention FLOPs of :mod:`.flops` (what MFU usually
counts); the peak is the vendor's **dense** (no 2:4 sparsity) bf16 tensor-core figure, the
same for fp16. (A measured ceiling is lower: about 790 TFLOP/s of bf16 matrix work was seen on
an H200, whose data-sheet peak is 989.)
"""
from typing import Optional, Sequence, Tuple

# (substring of torch.cuda.get_device_name, dense bf16 TFLOP/s). First match wins, so more
# specific names come before names they contain (GH200 before H200, A100 before A10, ...).
PEAK_BF16_TFLOPS: Sequence[Tuple[str, float]] = (
    ('GB200', 2500.0),
    ('B200', 2250.0),
    ('GH200', 989.4),
    ('H200', 989.4),
    ('H100 PCIe', 756.5),
    ('H100 NVL', 835.5),
    ('H100', 989.4),
    ('H800', 989.4),
    ('H20', 148.0),
    ('A100', 312.0),
    ('A800', 312.0),
    ('L40S', 362.1),
    ('L40', 181.0),
    ('L4', 121.0),
    ('A40', 149.7),
    ('RTX 4090', 165.2),
)


def peak_tflops(device_name: str, amp: str = 'bf16') -> Optional[float]:
    """Dense bf16/fp16 peak of a GPU named ``device_name``, TFLOP/s; None when unknown.

    Args:
        device_name (str): e.g. ``'NVIDIA H200'`` (``torch.cuda.get_device_name()``).
        amp (str): ``'bf16'`` or ``'fp16'``; other precisions (fp32/TF32) have no entry.
    """
    if amp not in ('bf16', 'fp16'):
        return None
    for key, tflops in PEAK_BF16_TFLOPS:
        if key in device_name:
            return tflops
    return None


def mfu(flops_per_step: Optional[float], step_time_s: Optional[float],
        peak: Optional[float]) -> Optional[float]:
    """Share of ``peak`` (TFLOP/s) reached by ``flops_per_step`` in ``step_time_s``."""
    if not flops_per_step or not step_time_s or not peak:
        return None
    return flops_per_step / step_time_s / (peak * 1e12)
