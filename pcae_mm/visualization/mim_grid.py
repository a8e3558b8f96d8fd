"""Draw what one MIM step sees: mask, kept tokens per PTR stage, reconstruction or similarity."""
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch

from ..models.heads.pixel_head import patchify

MASK_GREY = np.array([60, 60, 60], dtype=np.float32)


def denormalize(images: torch.Tensor, mean: Sequence[float],
                std: Sequence[float]) -> np.ndarray:
    """B x 3 x H x W normalised tensor -> B x H x W x 3 uint8 RGB."""
    mean_t = torch.tensor(mean, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    std_t = torch.tensor(std, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    img = (images * std_t + mean_t).clamp(0, 255)
    return img.permute(0, 2, 3, 1).round().byte().cpu().numpy()


def _patch_mask(ids: torch.Tensor, num_patches: int) -> np.ndarray:
    m = np.zeros(num_patches, dtype=bool)
    m[ids.cpu().numpy()] = True
    return m


def _paint(img: np.ndarray, keep: np.ndarray, p: int, fill: Optional[np.ndarray] = None,
           alpha: float = 1.0) -> np.ndarray:
    """Grey out (or tint) the patches where ``keep`` is False."""
    out = img.astype(np.float32).copy()
    w = img.shape[1] // p
    for i in np.flatnonzero(~keep):
        y, x = divmod(int(i), w)
        block = out[y * p:(y + 1) * p, x * p:(x + 1) * p]
        colour = MASK_GREY if fill is None else fill
        block[:] = (1 - alpha) * block + alpha * colour
    return out.clip(0, 255).astype(np.uint8)


def _heat(values: np.ndarray) -> np.ndarray:
    """[-1, 1] -> RGB (blue = dissimilar, red = similar)."""
    v = (np.clip(values, -1, 1) + 1) / 2
    return np.stack([255 * v, 64 * np.ones_like(v), 255 * (1 - v)], -1).astype(np.float32)


def draw_mim_grid(rgb: np.ndarray, out: Dict[str, torch.Tensor], patch_size: int,
                  pixel_pred: bool, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """One row per image: input | masked input | teacher tokens kept per stage | prediction.

    Args:
        rgb (ndarray): B x H x W x 3 uint8 input images.
        out (dict): An algorithm's ``reconstruct`` output: ``mask`` B x L, optional
            ``stage_ids`` (list of B x K_s), ``ids_decode`` B x K (the predictions' ids),
            ``pred`` B x K x P, and ``similarity`` B x K for feature targets.
        patch_size (int): Patch side in pixels.
        pixel_pred (bool): Predictions are (normalised) pixels: paste them into the image.
        mean, std: The data preprocessor's normalisation (for pixel predictions).

    Returns:
        ndarray: (B * H) x (C * W) x 3 uint8 grid, C = 3 + number of stages.
    """
    B, H, W, _ = rgb.shape
    L = out['mask'].shape[1]
    rows: List[np.ndarray] = []
    for b in range(B):
        visible = out['mask'][b].cpu().numpy() < 0.5
        cols = [rgb[b], _paint(rgb[b], visible, patch_size)]
        for ids in out.get('stage_ids', []):
            kept = _patch_mask(ids[b], L) | visible
            cols.append(_paint(rgb[b], kept, patch_size))
        target_ids = out['ids_decode'][b].cpu().numpy()
        if pixel_pred:
            cols.append(_paste_pixels(rgb[b], out['pred'][b], target_ids, visible, patch_size))
        else:
            canvas = _paint(rgb[b], visible, patch_size)
            sim = out['similarity'][b].float().cpu().numpy()
            heat = canvas.astype(np.float32)
            w = W // patch_size
            for i, s in zip(target_ids, sim):
                y, x = divmod(int(i), w)
                heat[y * patch_size:(y + 1) * patch_size,
                     x * patch_size:(x + 1) * patch_size] = _heat(np.array([s]))[0]
            cols.append(heat.astype(np.uint8))
        rows.append(np.concatenate(cols, axis=1))
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0))) for r in rows]
    return np.concatenate(rows, axis=0)


def _paste_pixels(img: np.ndarray, pred: torch.Tensor, ids: np.ndarray, visible: np.ndarray,
                  p: int) -> np.ndarray:
    """Visible patches from the input, predicted patches (per-patch de-standardised with the
    true patch statistics, as MAE's visualisation does) at ``ids``, grey elsewhere."""
    canvas = _paint(img, visible, p).astype(np.float32)
    true = patchify(torch.from_numpy(img).permute(2, 0, 1)[None].float(), p)[0]  # L x ppC
    w = img.shape[1] // p
    for k, i in enumerate(ids):
        t = true[int(i)]
        patch = pred[k].float().cpu() * (t.var() + 1e-6)**.5 + t.mean()
        y, x = divmod(int(i), w)
        canvas[y * p:(y + 1) * p, x * p:(x + 1) * p] = patch.reshape(p, p, 3).numpy()
    return canvas.clip(0, 255).astype(np.uint8)
