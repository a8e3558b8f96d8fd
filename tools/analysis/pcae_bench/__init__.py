"""Benchmark library of ``tools.analysis.benchmark`` and ``tools.analysis.ptr_flops`` (not
installed).

Counted FLOPs, peak memory, device-sync / SDPA-kernel census, timed train / inference steps,
PTR tables, model-FLOP utilisation. Imported as ``tools.analysis.pcae_bench`` (the tools run
as ``python -m tools.analysis.<tool>`` from the repository root). Importing it registers
nothing.
"""
from .census import OpCensus
from .devices import peak_tflops
from .flops import count_flops
from .memory import PeakMemoryMeter
from .ptr import PTR_LOCATIONS, TABLE5, ptr_token_reduction
from .timing import Timer, median

__all__ = [
    'OpCensus', 'peak_tflops', 'count_flops', 'PeakMemoryMeter', 'PTR_LOCATIONS', 'TABLE5',
    'ptr_token_reduction', 'Timer', 'median'
]
