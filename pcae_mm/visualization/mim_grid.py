"""Draw what one MIM step sees: mask, kept tokens per PTR stage, reconstruction or similarity.

Two layers:

* :func:`draw_grid` is pure drawing: a header row naming each column (with a colour bar and its
  range where a column is a heat map), then one row per image. Its input is a list of
  :class:`GridColumn` (a label and a B x H x W x 3 uint8 array each).
* :func:`mim_columns` is the only place that reads an algorithm's ``reconstruct`` output and
  turns it into those columns; :func:`draw_mim_grid` chains the two.
"""
import os
import os.path as osp
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from ..models.algorithms.base import MIMOutput
from ..models.teachers.ema_teacher import TeacherOut
from ..models.utils.targets import patchify

MASK_GREY = np.array([60, 60, 60], dtype=np.float32)
HEADER_BG = (255, 255, 255)
HEADER_FG = (20, 20, 20)


@dataclass
class GridColumn:
    """One column of the picture.

    Args:
        label (str): Header text, wrapped to the column width.
        images (ndarray): B x H x W x 3 uint8, one image per row.
        colorbar (tuple, optional): ``(low, high)`` of a heat-map colour scale
            (:func:`heat_colours`) drawn under the label with its end values.
    """
    label: str
    images: np.ndarray
    colorbar: Optional[Tuple[float, float]] = None


def denormalize(images: torch.Tensor, mean: Sequence[float],
                std: Sequence[float]) -> np.ndarray:
    """B x 3 x H x W normalised tensor -> B x H x W x 3 uint8 RGB."""
    mean_t = torch.tensor(mean, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    std_t = torch.tensor(std, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    img = (images * std_t + mean_t).clamp(0, 255)
    return img.permute(0, 2, 3, 1).round().byte().cpu().numpy()


def heat_colours(values: np.ndarray, low: float = -1., high: float = 1.) -> np.ndarray:
    """Values in [low, high] -> RGB float (blue = low / dissimilar, red = high / similar)."""
    v = (np.clip(values, low, high) - low) / (high - low)
    return np.stack([255 * v, 64 * np.ones_like(v), 255 * (1 - v)], -1).astype(np.float32)


# ------------------------------------------------------------------------------ drawing
def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: fixed-size bitmap font
        return ImageFont.load_default()


def _text_width(font, text: str) -> float:
    box = font.getbbox(text)
    return box[2] - box[0]


def _wrap(text: str, font, width: int) -> List[str]:
    """Greedy word wrap of ``text`` to ``width`` pixels (explicit newlines kept)."""
    lines: List[str] = []
    for para in text.split('\n'):
        line = ''
        for word in para.split():
            trial = f'{line} {word}'.strip()
            if line and _text_width(font, trial) > width:
                lines.append(line)
                line = word
            else:
                line = trial
        lines.append(line)
    return lines


def draw_grid(columns: Sequence[GridColumn], font_size: Optional[int] = None,
              gap: int = 2) -> np.ndarray:
    """Header row naming each column, then one row per image.

    Args:
        columns (list[GridColumn]): All with the same number of images and image height;
            widths may differ.
        font_size (int, optional): Defaults to a size readable at the image width
            (11 px for 96 px images, 18 px for 224 px ones).
        gap (int): White pixels between columns and between rows. Defaults to 2.

    Returns:
        ndarray: (header + B * H + (B - 1) * gap) x (sum of widths + (C - 1) * gap) x 3
        uint8; :func:`grid_layout` gives the header height and the column offsets.
    """
    if not columns:
        raise ValueError('draw_grid needs at least one column')
    B, H = columns[0].images.shape[:2]
    for c in columns:
        if c.images.shape[:2] != (B, H) or c.images.ndim != 4 or c.images.shape[3] != 3:
            raise ValueError(f'column {c.label!r}: images {c.images.shape}, expected '
                             f'{B} x {H} x W x 3 like the first column')
    widths = [c.images.shape[2] for c in columns]
    size = font_size or max(11, min(widths) // 12)
    font = _font(size)
    line_h = size + max(2, size // 4)
    pad = max(3, size // 3)
    wrapped = [_wrap(c.label, font, w - 2 * pad) for c, w in zip(columns, widths)]
    bar_h = (size + 2 * line_h) if any(c.colorbar for c in columns) else 0
    header_h = pad + max(len(w) for w in wrapped) * line_h + bar_h + pad

    offsets = np.cumsum([0] + [w + gap for w in widths[:-1]]).tolist()
    canvas = Image.new('RGB', (offsets[-1] + widths[-1], header_h + B * H + (B - 1) * gap),
                       HEADER_BG)
    draw = ImageDraw.Draw(canvas)
    for col, x0, w, lines in zip(columns, offsets, widths, wrapped):
        for i, line in enumerate(lines):
            draw.text((x0 + pad, pad + i * line_h), line, fill=HEADER_FG, font=font)
        if col.colorbar is not None:
            low, high = col.colorbar
            top = header_h - pad - bar_h + line_h // 2
            strip = heat_colours(np.linspace(low, high, w - 2 * pad), low, high).astype(np.uint8)
            canvas.paste(Image.fromarray(np.repeat(strip[None], size, 0)), (x0 + pad, top))
            lo_txt, hi_txt = f'{low:g}', f'{high:g}'
            draw.text((x0 + pad, top + size + 1), lo_txt, fill=HEADER_FG, font=font)
            draw.text((x0 + w - pad - _text_width(font, hi_txt), top + size + 1), hi_txt,
                      fill=HEADER_FG, font=font)
        for b in range(B):
            canvas.paste(Image.fromarray(col.images[b]), (x0, header_h + b * (H + gap)))
    return np.asarray(canvas).copy()


def grid_layout(grid: np.ndarray, num_images: int, image_size: int,
                gap: int = 2) -> Tuple[int, int]:
    """``(header height, column count)`` of a :func:`draw_grid` picture of square images."""
    header = grid.shape[0] - num_images * image_size - (num_images - 1) * gap
    return header, (grid.shape[1] + gap) // (image_size + gap)


def save_picture(grid: np.ndarray, path: str) -> str:
    """Write an H x W x 3 uint8 RGB grid as PNG (creating the folder); returns the path."""
    if osp.dirname(path):
        os.makedirs(osp.dirname(path), exist_ok=True)
    Image.fromarray(grid).save(path)
    return path


# ----------------------------------------------------------- algorithm output -> columns
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


def _count(values: Sequence[int]) -> str:
    lo, hi = min(values), max(values)
    return str(lo) if lo == hi else f'{lo}-{hi}'


def mim_columns(rgb: np.ndarray, out: MIMOutput, patch_size: int,
                pixel_pred: bool) -> List[GridColumn]:
    """input | masked input | teacher tokens kept per stage | prediction, as labelled columns.

    Args:
        rgb (ndarray): B x H x W x 3 uint8 input images.
        out (MIMOutput): An algorithm's ``reconstruct`` output: ``mask`` B x L (1 = masked),
            ``ids_pred`` B x K (the predictions' ids), ``pred`` B x K x P, ``similarity``
            B x K for feature targets, and the EMA teacher's ``TeacherOut`` extra when it has
            one (its ``stage_ids``, B x K_s per token-reduction stage, get a column each).
        patch_size (int): Patch side in pixels.
        pixel_pred (bool): Predictions are (normalised) pixels: paste them into the image.
    """
    B, H, W, _ = rgb.shape
    p = patch_size
    mask = out.mask
    L = mask.shape[1]
    visible = [mask[b].cpu().numpy() < 0.5 for b in range(B)]
    n_vis = [int(v.sum()) for v in visible]
    cols = [
        GridColumn('input', rgb),
        GridColumn(f'masked input\n{_count(n_vis)} of {L} patches visible',
                   np.stack([_paint(rgb[b], visible[b], p) for b in range(B)])),
    ]
    n_masked = _count([L - n for n in n_vis])
    teacher = out.extra(TeacherOut)
    for s, ids in enumerate(teacher.stage_ids if teacher is not None else []):
        kept = [_paint(rgb[b], _patch_mask(ids[b], L) | visible[b], p) for b in range(B)]
        cols.append(GridColumn(
            f'kept after stage {s + 1}\n{ids.shape[1]} of {n_masked} masked tokens',
            np.stack(kept)))
    ids_decode = out.ids_pred
    K = ids_decode.shape[1]
    if pixel_pred:
        recon = [_paste_pixels(rgb[b], out.pred[b], ids_decode[b].cpu().numpy(), visible[b],
                               p) for b in range(B)]
        cols.append(GridColumn(f'reconstruction\n{K} predicted patches', np.stack(recon)))
    else:
        sim = out.similarity.float().cpu().numpy()
        heat = []
        w = W // p
        for b in range(B):
            canvas = _paint(rgb[b], visible[b], p).astype(np.float32)
            colours = heat_colours(sim[b])
            for i, c in zip(ids_decode[b].cpu().numpy(), colours):
                y, x = divmod(int(i), w)
                canvas[y * p:(y + 1) * p, x * p:(x + 1) * p] = c
            heat.append(canvas.astype(np.uint8))
        cols.append(GridColumn(
            f'prediction/target\ncosine, {K} tokens\n{sim.min():.2f} to {sim.max():.2f}',
            np.stack(heat), colorbar=(-1., 1.)))
    return cols


def draw_mim_grid(rgb: np.ndarray, out: MIMOutput, patch_size: int,
                  pixel_pred: bool, mean: Sequence[float] = (0., 0., 0.),
                  std: Sequence[float] = (1., 1., 1.)) -> np.ndarray:
    """Header row, then one row per image: input | masked input | teacher tokens kept per
    stage | reconstruction (pixel targets) or prediction/target similarity (feature targets).

    Args:
        rgb (ndarray): B x H x W x 3 uint8 input images.
        out (dict): An algorithm's ``reconstruct`` output (see :func:`mim_columns`).
        patch_size (int): Patch side in pixels.
        pixel_pred (bool): Predictions are (normalised) pixels: paste them into the image.
        mean, std: Unused (kept for callers of the earlier signature): pixel predictions are
            de-standardised with each patch's own statistics.

    Returns:
        ndarray: (header + B * H) x (C * W) x 3 uint8 grid, C = 3 + number of stages.
    """
    return draw_grid(mim_columns(rgb, out, patch_size, pixel_pred))


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
