"""FLOPs counted at the aten level (forward, backward, any Python control flow).

``torch.utils.flop_counter.FlopCounterMode`` sees every matmul / convolution / attention kernel
actually dispatched, so dynamic paths (token reduction's top-k, PR-MIM's furthest sampling) and
the backward pass are counted without tracing. One FLOP is a multiply or an add: a multiply-add
(MAC) is 2 FLOPs. Element-wise ops (norms, activations, the optimizer) are not counted, as in
fvcore / mmengine.analysis for everything but norms.

torch's registry has no formula for the fused CPU attention kernel
(``_scaled_dot_product_flash_attention_for_cpu``): without one, attention would count as zero
on CPU. :data:`EXTRA_FORMULAS` adds it (same formula as the GPU flash kernel).
"""
from typing import Any, Callable, Dict, Tuple

import torch
from torch.utils.flop_counter import FlopCounterMode


def _bmm(b: int, m: int, k: int, n: int) -> int:
    """FLOPs of a batched (b x m x k) @ (b x k x n) product."""
    return 2 * b * m * k * n


def sdpa_forward_flops(query_shape, key_shape, value_shape, *args, out_shape=None,
                       **kwargs) -> int:
    """softmax(Q K^T) V: two batched products (B x H x Sq x D, B x H x Sk x D / Dv)."""
    b, h, sq, d = query_shape
    sk, dv = key_shape[-2], value_shape[-1]
    return _bmm(b * h, sq, d, sk) + _bmm(b * h, sq, sk, dv)


def sdpa_backward_flops(grad_out_shape, query_shape, key_shape, value_shape, *args,
                        out_shape=None, **kwargs) -> int:
    """Backward of attention: recompute scores, then dV, dP, dQ and dK (five products)."""
    b, h, sq, d = query_shape
    sk, dv = key_shape[-2], value_shape[-1]
    return (_bmm(b * h, sq, d, sk) + _bmm(b * h, sq, dv, sk) + _bmm(b * h, sk, sq, dv) +
            _bmm(b * h, sq, sk, d) + _bmm(b * h, d, sq, sk))


def _extra_formulas() -> Dict[Any, Callable]:
    aten = torch.ops.aten
    extra = {}
    if hasattr(aten, '_scaled_dot_product_flash_attention_for_cpu'):
        extra[aten._scaled_dot_product_flash_attention_for_cpu] = sdpa_forward_flops
    if hasattr(aten, '_scaled_dot_product_flash_attention_for_cpu_backward'):
        extra[aten._scaled_dot_product_flash_attention_for_cpu_backward] = sdpa_backward_flops
    return extra


EXTRA_FORMULAS = _extra_formulas()


def count_flops(fn: Callable, *args, **kwargs) -> Tuple[Any, int]:
    """Run ``fn(*args, **kwargs)`` once and count its FLOPs.

    Args:
        fn (callable): Anything that runs torch ops (a forward, a whole train step).

    Returns:
        tuple: ``fn``'s result and the FLOPs it dispatched (int).
    """
    with FlopCounterMode(display=False, custom_mapping=EXTRA_FORMULAS) as counter:
        result = fn(*args, **kwargs)
    return result, int(counter.get_total_flops())
