"""Window partitioning and decomposed relative positions for a plain ViT on dense tasks.

ViTDet (`Li et al., 2022 <https://arxiv.org/abs/2203.16527>`_) keeps the pre-trained ViT and
only changes its attention at fine-tuning time: most blocks attend inside non-overlapping
windows, a few keep global attention, and every attention adds decomposed relative position
biases (zero-initialised, so the pre-trained function is unchanged at step 0).
"""
from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmpretrain.models.utils import MultiheadAttention


def window_partition(x: torch.Tensor, window_size: int) -> Tuple[torch.Tensor, Tuple[int, int]]:
    """Split a feature map into non-overlapping windows, zero-padding it first.

    Args:
        x (Tensor): B x H x W x C.
        window_size (int): Window side.

    Returns:
        tuple: windows (B * nW) x (ws * ws) x C and the padded size (Hp, Wp).
    """
    B, H, W, C = x.shape
    pad_h, pad_w = (-H) % window_size, (-W) % window_size
    if pad_h or pad_w:
        x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))  # B x Hp x Wp x C
    Hp, Wp = H + pad_h, W + pad_w
    x = x.view(B, Hp // window_size, window_size, Wp // window_size, window_size, C)
    windows = x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window_size * window_size, C)
    return windows, (Hp, Wp)


def window_unpartition(windows: torch.Tensor, window_size: int, pad_hw: Tuple[int, int],
                       hw: Tuple[int, int]) -> torch.Tensor:
    """Inverse of :func:`window_partition`, removing the padding.

    Args:
        windows (Tensor): (B * nW) x (ws * ws) x C.
        window_size (int): Window side.
        pad_hw (tuple): Padded size (Hp, Wp).
        hw (tuple): Original size (H, W).

    Returns:
        Tensor: B x H x W x C.
    """
    Hp, Wp = pad_hw
    H, W = hw
    B = windows.shape[0] // (Hp * Wp // window_size // window_size)
    x = windows.view(B, Hp // window_size, Wp // window_size, window_size, window_size, -1)
    x = x.permute(0, 1, 3, 2, 4, 5).reshape(B, Hp, Wp, -1)  # B x Hp x Wp x C
    return x[:, :H, :W].contiguous()


def get_rel_pos(q_size: int, k_size: int, rel_pos: torch.Tensor) -> torch.Tensor:
    """Relative position embeddings for every (query, key) pair along one axis.

    Args:
        q_size (int): Query length along the axis.
        k_size (int): Key length along the axis.
        rel_pos (Tensor): (2 * S - 1) x C table, linearly interpolated when S differs.

    Returns:
        Tensor: q_size x k_size x C.
    """
    max_dist = 2 * max(q_size, k_size) - 1
    if rel_pos.shape[0] != max_dist:
        rel_pos = F.interpolate(
            rel_pos.t().unsqueeze(0), size=max_dist, mode='linear').squeeze(0).t()  # D x C
    q_coords = torch.arange(q_size, device=rel_pos.device)[:, None] * max(k_size / q_size, 1.0)
    k_coords = torch.arange(k_size, device=rel_pos.device)[None, :] * max(q_size / k_size, 1.0)
    rel = (q_coords - k_coords) + (k_size - 1) * max(q_size / k_size, 1.0)
    return rel_pos[rel.long()]


class RelPosAttention(MultiheadAttention):
    """mmpretrain's multi-head attention (same ``qkv`` / ``proj`` keys) with optional
    decomposed relative position biases over an h x w token grid.

    Args:
        embed_dims (int): Token width.
        num_heads (int): Attention heads.
        rel_pos_size (int, optional): Grid side the ``rel_pos_h`` / ``rel_pos_w`` tables are
            sized for (``2 * size - 1`` rows, interpolated for other sizes). None: no relative
            positions.
        **kwargs: Passed to :class:`mmpretrain.models.utils.MultiheadAttention`.
    """

    def __init__(self, embed_dims: int, num_heads: int, rel_pos_size: Optional[int] = None,
                 **kwargs) -> None:
        super().__init__(embed_dims=embed_dims, num_heads=num_heads, **kwargs)
        self.use_rel_pos = rel_pos_size is not None
        if self.use_rel_pos:
            self.rel_pos_h = nn.Parameter(torch.zeros(2 * rel_pos_size - 1, self.head_dims))
            self.rel_pos_w = nn.Parameter(torch.zeros(2 * rel_pos_size - 1, self.head_dims))

    def rel_pos_bias(self, q: torch.Tensor, hw: Tuple[int, int]) -> torch.Tensor:
        """Additive attention bias, B x heads x N x N (N = h * w)."""
        B, nh, N, C = q.shape
        h, w = hw
        Rh = get_rel_pos(h, h, self.rel_pos_h)  # h x h x C
        Rw = get_rel_pos(w, w, self.rel_pos_w)  # w x w x C
        r_q = q.reshape(B * nh, h, w, C)
        rel_h = torch.einsum('bhwc,hkc->bhwk', r_q, Rh)  # Bnh x h x w x h
        rel_w = torch.einsum('bhwc,wkc->bhwk', r_q, Rw)  # Bnh x h x w x w
        bias = rel_h[..., :, None] + rel_w[..., None, :]  # Bnh x h x w x h x w
        return bias.reshape(B, nh, N, N)

    def forward(self, x: torch.Tensor, hw: Optional[Tuple[int, int]] = None) -> torch.Tensor:
        """Attention over B sequences of N = h * w tokens (or any N without rel pos).

        Args:
            x (Tensor): B x N x C.
            hw (tuple, optional): Token grid (h, w), needed with relative positions.

        Returns:
            Tensor: B x N x C.
        """
        B, N, _ = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, self.head_dims).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]  # B x heads x N x d
        mask = None
        if self.use_rel_pos:
            if hw is None or hw[0] * hw[1] != N:
                raise ValueError(f'relative positions need the token grid of the {N} tokens, '
                                 f'got hw={hw}')
            mask = self.rel_pos_bias(q, hw).to(q.dtype)
        attn_drop = self.attn_drop if self.training else 0.
        x = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=attn_drop)
        x = x.transpose(1, 2).reshape(B, N, self.embed_dims)  # B x N x C
        x = self.proj(x)
        return self.out_drop(self.gamma1(self.proj_drop(x)))
