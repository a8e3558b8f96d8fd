"""Benchmark helpers: counted FLOPs, peak memory, timed train / inference steps, PTR tables.

Used by ``tools/analysis/benchmark.py`` and ``tools/analysis/ptr_flops.py``; importing this
package registers nothing.
"""
from .flops import count_flops
from .memory import PeakMemoryMeter
from .ptr import PTR_LOCATIONS, TABLE5, ptr_token_reduction
from .timing import Timer, median

__all__ = [
    'count_flops', 'PeakMemoryMeter', 'PTR_LOCATIONS', 'TABLE5', 'ptr_token_reduction',
    'Timer', 'median'
]
