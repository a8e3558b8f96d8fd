"""Input-pipeline throughput: images/s per CPU core of the pre-training pipelines (issue 24).

``python -m tools.analysis.benchmark --data-only`` runs :func:`main`. On ImageNet-like JPEGs it
generates (crops of the photographs scikit-image ships, 400-500 px on the long side, ImageNet's
aspect ratios, quality 90, baseline 4:2:0 like ImageNet's files; or ``--data-dir``), one
process pinned to one core (``os.sched_setaffinity``, what ``taskset`` does; one torch thread;
OpenCV threads off, as mmengine's ``opencv_num_threads=0`` sets them in the workers), it times
every pipeline in interleaved rounds and prints images/s per core, the ratio to the shipped
pipeline in the same run, and the cores per GPU each needs where a GPU's training throughput is
known (``--gpu-img-s``, ``--step-time``, or ``--bench-json`` of a GPU run of the benchmark).

Pipelines (``--data-pipelines``):

* ``shipped``: LoadImageChecked + RandomResizedCrop(224, 0.2-1, pillow, bicubic) + RandomFlip +
  PackInputs (what the recipes used before issue 24);
* ``fast-cv2`` / ``fast-tv``: LoadImageFast (OpenCV / torchvision decoder) +
  RandomResizedCropTensor + RandomFlipTensor + PackInputs: same sampler, same output format;
* ``cv2-resize``: the shipped pipeline with ``backend='cv2'`` (a one-word change users try; NOT
  the same augmentation: no antialiasing when shrinking);
* ``gpu-worker``: LoadImageBytes + PackInputs, the CPU workers' share of the GPU-decode path;
* ``gpu-preproc``: GPUDecodeDataPreprocessor (decode + crop + flip + normalise, batches of
  ``--data-batch``) on ``--device``: on a CPU the same code decodes with libjpeg-turbo (a per-core
  figure); on CUDA it is the GPU's rate (nvjpeg), not a per-core figure;
* ``dali-preproc``: DALIDataPreprocessor (the same boxes and flips; NVIDIA DALI decodes only the
  box, resizes and flips; one DALI thread), likewise per core on a CPU and the GPU's rate on
  CUDA. Timed by default where NVIDIA DALI is installed (it is optional), else left out with a
  note; asked for by name without DALI, it fails naming the package.
"""
import argparse
import glob
import json
import os
import os.path as osp
import platform
import statistics
import sys
import time
from datetime import datetime, timezone
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

PIPELINES = ('shipped', 'fast-cv2', 'fast-tv', 'cv2-resize', 'gpu-worker', 'gpu-preproc',
             'dali-preproc')
#: The rows that time a data preprocessor on whole batches (on --device), and its type.
PREPROCESSORS = {'gpu-preproc': 'GPUDecodeDataPreprocessor',
                 'dali-preproc': 'DALIDataPreprocessor'}
IMG_SIZE = 224
CROP = dict(scale=IMG_SIZE, crop_ratio_range=(0.2, 1.0), interpolation='bicubic')
MEAN, STD = [123.675, 116.28, 103.53], [58.395, 57.12, 57.375]
PHOTOS = ('astronaut', 'chelsea', 'coffee', 'rocket', 'immunohistochemistry',
          'hubble_deep_field')
# (width / height, weight): ImageNet's common shapes, landscape 4:3 most of all
ASPECTS = ((4 / 3, 5), (3 / 2, 2), (1.0, 1), (3 / 4, 2), (2 / 3, 1))
LABELS = {
    'shipped': 'shipped: LoadImageChecked + RandomResizedCrop(pillow) + RandomFlip',
    'fast-cv2': 'fast CPU: LoadImageFast(cv2) + RandomResizedCropTensor + RandomFlipTensor',
    'fast-tv': 'fast CPU: LoadImageFast(torchvision) + RandomResizedCropTensor + RandomFlipTensor',
    'cv2-resize': 'shipped with backend=cv2 (no antialiasing: not the same augmentation)',
    'gpu-worker': 'GPU decode, CPU worker part: LoadImageBytes + PackInputs',
    'gpu-preproc': 'GPU decode, GPUDecodeDataPreprocessor on {device}',
    'dali-preproc': 'NVIDIA DALI, DALIDataPreprocessor on {device} (1 DALI thread)',
}


# ----------------------------------------------------------------------------- the images
def _photographs() -> List[np.ndarray]:
    try:
        from skimage import data as skdata
    except ImportError:
        return []
    photos = []
    for name in PHOTOS:
        try:
            img = np.asarray(getattr(skdata, name)())
        except Exception:  # noqa: BLE001 - a sample that would need a download is skipped
            continue
        if img.ndim == 3 and img.shape[2] >= 3 and min(img.shape[:2]) >= 256:
            photos.append(np.ascontiguousarray(img[..., :3]).astype(np.uint8))
    return photos


def _synthetic(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Smooth colour fields, blobs and grain (when scikit-image is missing)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32) / max(h, w)
    img = 128 + 60 * (rng.uniform(-1, 1, 3) * xx[..., None] + rng.uniform(-1, 1, 3) *
                      yy[..., None])
    for _ in range(6):
        cy, cx, r = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.03, 0.3)
        img += np.exp(-((yy - cy)**2 + (xx - cx)**2) / (2 * r * r))[..., None] * \
            rng.uniform(-90, 90, 3)
    img += rng.normal(0, 8, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def make_image_set(folder: str, num: int = 48, seed: int = 0, quality: int = 90) -> dict:
    """Write ``num`` ImageNet-like JPEGs into ``folder`` (reused when already there).

    Each is a random crop of one of scikit-image's photographs, 400-500 px on the long side at
    one of ImageNet's common aspect ratios (at the photograph's own resolution when it is large
    enough, else resized with Pillow's bicubic), flipped at random, saved by Pillow
    (libjpeg-turbo) at ``quality``, baseline, 4:2:0. Without scikit-image: synthetic smooth
    images (``content='synthetic'``; they decode a little faster than photographs).

    Returns:
        dict: ``paths`` (sorted), ``content`` ('photographs' or 'synthetic'), ``sizes``
        ((W, H) per file), ``mean_bytes``.
    """
    from PIL import Image
    stamp = osp.join(folder, 'spec.json')
    spec = dict(num=num, seed=seed, quality=quality, version=2)
    if osp.isfile(stamp):
        with open(stamp) as f:
            saved = json.load(f)
        if saved.get('spec') == spec:
            return dict(saved['info'], paths=[osp.join(folder, p) for p in saved['files']])
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    photos = _photographs()
    aspects, weights = zip(*ASPECTS)
    weights = np.asarray(weights, float) / sum(weights)
    files, sizes, nbytes = [], [], []
    for i in range(num):
        aspect = aspects[rng.choice(len(aspects), p=weights)]
        long_side = int(rng.integers(400, 501))
        w, h = (long_side, round(long_side / aspect)) if aspect >= 1 else \
            (round(long_side * aspect), long_side)
        if photos:
            src = photos[i % len(photos)]
            sh, sw = src.shape[:2]
            # a crop at the photograph's own resolution when it is large enough (the texture
            # and JPEG size of a real photograph); else the largest crop of this aspect ratio,
            # resized
            cw, ch = (w, h) if (w <= sw and h <= sh) else \
                (min(sw, int(sh * w / h)), int(round(min(sw, int(sh * w / h)) * h / w)))
            y, x = int(rng.integers(0, sh - ch + 1)), int(rng.integers(0, sw - cw + 1))
            img = Image.fromarray(src[y:y + ch, x:x + cw])
            if (cw, ch) != (w, h):
                img = img.resize((w, h), Image.BICUBIC)
            if rng.random() < 0.5:
                img = img.transpose(Image.FLIP_LEFT_RIGHT)
        else:
            img = Image.fromarray(_synthetic(rng, h, w))
        name = f'img_{i:04d}.JPEG'
        img.save(osp.join(folder, name), quality=quality)
        files.append(name)
        sizes.append((w, h))
        nbytes.append(osp.getsize(osp.join(folder, name)))
    info = dict(content='photographs' if photos else 'synthetic', sizes=sizes,
                mean_bytes=int(np.mean(nbytes)), quality=quality,
                photographs=len(photos))
    with open(stamp, 'w') as f:
        json.dump(dict(spec=spec, info=info, files=files), f)
    return dict(info, paths=[osp.join(folder, p) for p in files])


def files_in(folder: str, num: int) -> dict:
    """The first ``num`` JPEG files under ``folder`` (sorted, recursive)."""
    paths = sorted(p for ext in ('JPEG', 'jpg', 'jpeg', 'JPG')
                   for p in glob.glob(osp.join(folder, '**', f'*.{ext}'), recursive=True))
    if not paths:
        raise FileNotFoundError(f'--data-dir {folder!r}: no JPEG files found under it')
    paths = paths[:num]
    return dict(content=f'files under {folder}', paths=paths, sizes=None,
                mean_bytes=int(np.mean([osp.getsize(p) for p in paths])))


# ----------------------------------------------------------------------------- pipelines
def pipeline_config(name: str) -> List[dict]:
    """The transform list of a per-sample pipeline."""
    pil = dict(type='RandomResizedCrop', backend='pillow', **CROP)
    tensor = [dict(type='RandomResizedCropTensor', **CROP), dict(type='RandomFlipTensor',
                                                                  prob=0.5)]
    configs = {
        'shipped': [dict(type='LoadImageChecked'), pil, dict(type='RandomFlip', prob=0.5)],
        'cv2-resize': [dict(type='LoadImageChecked'), dict(pil, backend='cv2'),
                       dict(type='RandomFlip', prob=0.5)],
        'fast-cv2': [dict(type='LoadImageFast', decoder='cv2')] + tensor,
        'fast-tv': [dict(type='LoadImageFast', decoder='torchvision')] + tensor,
        'gpu-worker': [dict(type='LoadImageBytes')],
    }
    if name not in configs:
        raise KeyError(f'no per-sample pipeline {name!r}; known: {sorted(configs)}')
    return configs[name] + [dict(type='PackInputs')]


def build_pipeline(name: str) -> Callable[[dict], dict]:
    """A per-sample pipeline as mmengine composes it from a config."""
    from mmengine.dataset import Compose
    from mmpretrain.registry import TRANSFORMS
    return Compose([TRANSFORMS.build(t) for t in pipeline_config(name)])


def build_gpu_preprocessor(device: torch.device, name: str = 'gpu-preproc'):
    """The row's data preprocessor (GPUDecodeDataPreprocessor or DALIDataPreprocessor) with
    the recipes' crop, flip and normalisation, on ``device``."""
    from mmpretrain.registry import MODELS
    extra = dict(num_threads=1) if name == 'dali-preproc' else {}
    pre = MODELS.build(dict(
        type=PREPROCESSORS[name], mean=MEAN, std=STD, to_rgb=True,
        augments=[dict(type='RandomResizedCropTensor', **CROP),
                  dict(type='RandomFlipTensor', prob=0.5)], **extra))
    return pre.to(device)


def default_pipelines() -> List[str]:
    """Every row, less ``dali-preproc`` where NVIDIA DALI does not import (optional)."""
    from pcae_mm.datasets.dali_decode import dali_installed
    return [n for n in PIPELINES if n != 'dali-preproc' or dali_installed()]


def gpu_batches(paths: Sequence[str], batch: int, num_batches: int = 2) -> List[dict]:
    """``num_batches`` ``pseudo_collate`` batches of ``batch`` LoadImageBytes + PackInputs
    outputs (the worker part), cycling over ``paths``."""
    from mmengine.dataset import pseudo_collate
    worker = build_pipeline('gpu-worker')
    samples = [worker(dict(img_path=paths[i % len(paths)], sample_idx=i))
               for i in range(batch * num_batches)]
    return [pseudo_collate(samples[i:i + batch]) for i in range(0, len(samples), batch)]


# ----------------------------------------------------------------------------- timing
def pin_to_one_core(core: Optional[int] = None) -> Tuple[int, set]:
    """Run this process on one core with one torch thread and no OpenCV threads.

    Returns:
        tuple: (the core, the previous affinity set, to restore).
    """
    previous = set(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else set()
    if core is None:
        core = max(previous) if previous else 0
    if hasattr(os, 'sched_setaffinity'):
        os.sched_setaffinity(0, {core})
    torch.set_num_threads(1)
    try:
        import cv2
        cv2.setNumThreads(0)
    except ImportError:  # pragma: no cover - OpenCV comes with mmcv
        pass
    return core, previous


def time_samples(pipeline: Callable[[dict], dict], paths: Sequence[str], num: int) -> float:
    """Seconds for ``num`` samples through ``pipeline`` (cycling over ``paths``)."""
    t0 = time.perf_counter()
    for i in range(num):
        out = pipeline(dict(img_path=paths[i % len(paths)], sample_idx=i))
        if out is None:
            raise RuntimeError(f'pipeline dropped {paths[i % len(paths)]!r}')
    return time.perf_counter() - t0


def time_preprocessor(pre, batches: Sequence[dict], num: int,
                      device: torch.device) -> Tuple[float, int]:
    """Seconds for at least ``num`` images through the preprocessor (whole batches, cycling),
    and the number of images."""
    done, k = 0, 0
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    while done < num:
        data = batches[k % len(batches)]
        pre(dict(inputs=list(data['inputs']), data_samples=list(data['data_samples'])), True)
        done += len(data['inputs'])
        k += 1
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
    return time.perf_counter() - t0, done


def check_decoding(paths: Sequence[str], device: torch.device) -> dict:
    """How far ``device``'s decoder is from OpenCV's (the shipped decoder) on these files:
    max / mean absolute difference in grey levels, RGB."""
    import cv2

    from pcae_mm.datasets.gpu_decode import decode_batch
    encoded = [torch.frombuffer(bytearray(open(p, 'rb').read()), dtype=torch.uint8)
               for p in paths]
    decoded = decode_batch(encoded, device)
    worst, means = 0, []
    for p, img in zip(paths, decoded):
        ref = torch.from_numpy(cv2.imread(p, cv2.IMREAD_COLOR)[..., ::-1].copy()).permute(2, 0, 1)
        diff = (img.cpu().int() - ref.int()).abs()
        worst = max(worst, int(diff.max()))
        means.append(float(diff.float().mean()))
    return dict(device=str(device), max_abs=worst, mean_abs=float(np.mean(means)))


# ----------------------------------------------------------------------------- GPU demand
def gpu_demand(args) -> Dict[str, dict]:
    """Images/s a GPU trains at, per name: ``{name: dict(images_per_s, source)}``."""
    demand = {}
    for item in args.gpu_img_s or []:
        name, _, value = item.rpartition('=')
        if not name:
            raise ValueError(f'--gpu-img-s takes NAME=IMAGES_PER_S, got {item!r}')
        demand[name] = dict(images_per_s=float(value), source='--gpu-img-s')
    if args.step_time:
        demand['--step-time'] = dict(images_per_s=args.step_batch / args.step_time,
                                     source=f'batch {args.step_batch} / {args.step_time} s')
    path = args.bench_json
    if path is None and not demand:
        default = osp.join(args.out_dir, 'benchmark.json')
        path = default if osp.isfile(default) else None
    if path:
        with open(path) as f:
            bench = json.load(f)
        meta = bench.get('meta', {})
        if meta.get('device_type') != 'cuda':
            if args.bench_json:
                raise ValueError(f'--bench-json {path!r} was measured on '
                                 f'{meta.get("device", "?")}, not a GPU: no GPU step time')
        else:
            for row in bench.get('train', []):
                if row.get('images_per_s'):
                    demand[row['name']] = dict(
                        images_per_s=float(row['images_per_s']),
                        source=f'{osp.basename(path)}: {meta.get("device")}, batch '
                               f'{meta.get("batch_size")}, amp {meta.get("amp")}')
    return demand


# ----------------------------------------------------------------------------- run
def add_args(parser: argparse.ArgumentParser) -> None:
    """The ``--data-only`` options (benchmark.py adds them to its parser)."""
    g = parser.add_argument_group('input pipeline (--data-only)')
    g.add_argument('--data-only', action='store_true',
                   help='only time the input pipelines: images/s per CPU core')
    g.add_argument('--data-pipelines', nargs='+', choices=PIPELINES,
                   help='pipelines to time (default: all; dali-preproc where NVIDIA DALI is '
                   'installed)')
    g.add_argument('--data-images', type=int, default=240,
                   help='images per pipeline per round')
    g.add_argument('--data-rounds', type=int, default=3, help='interleaved rounds')
    g.add_argument('--data-files', type=int, default=48, help='distinct JPEG files')
    g.add_argument('--data-quality', type=int, default=90,
                   help='JPEG quality of the generated files (higher: larger files, slower '
                   'decoding)')
    g.add_argument('--data-dir', help='time on JPEGs under this folder instead of generated ones')
    g.add_argument('--data-batch', type=int,
                   help='batch of the gpu-preproc / dali-preproc rows (default: 32 on a CPU, '
                   '256 on CUDA)')
    g.add_argument('--core', type=int, help='the CPU core to pin to (default: the last allowed)')
    g.add_argument('--gpu-img-s', nargs='+', metavar='NAME=IMG_S',
                   help='training images/s of one GPU, for the cores-per-GPU columns')
    g.add_argument('--step-time', type=float,
                   help='one GPU\'s training step time (s) at --step-batch, for cores per GPU')
    g.add_argument('--step-batch', type=int, default=512, help='batch of --step-time')
    g.add_argument('--bench-json', help='benchmark JSON of a GPU run: its img/s per config for '
                   'cores per GPU (default: <out-dir>/benchmark.json when it is a GPU run)')


def run(args, device: torch.device, progress=print) -> dict:
    """Time the pipelines; the result dict (``meta``, ``rows``, ``demand``)."""
    from mmpretrain.utils import register_all_modules

    import pcae_mm  # noqa: F401
    register_all_modules(init_default_scope=True)
    images = files_in(args.data_dir, args.data_files) if args.data_dir else \
        make_image_set(osp.join(args.out_dir, 'data_images'), args.data_files,
                       quality=args.data_quality)
    paths = images['paths']
    load_before = os.getloadavg()
    core, previous = pin_to_one_core(args.core)
    try:
        names = list(args.data_pipelines or default_pipelines())
        per_sample = {n: build_pipeline(n) for n in names if n not in PREPROCESSORS}
        pres = {n: build_gpu_preprocessor(device, n) for n in names if n in PREPROCESSORS}
        batch = args.data_batch or (256 if device.type == 'cuda' else 32)
        batches = gpu_batches(paths, batch) if pres else None
        rates: Dict[str, List[float]] = {n: [] for n in names}  # per wall-clock second
        cpu_rates: Dict[str, List[float]] = {n: [] for n in names}  # per CPU second
        for n, pipe in per_sample.items():  # warm-up: page cache, lazy initialisation
            time_samples(pipe, paths, len(paths))
        for pre in pres.values():
            time_preprocessor(pre, batches, 1, device)
        for r in range(args.data_rounds):
            for n in names:
                np.random.seed(r)
                cpu0 = time.process_time()
                if n in pres:
                    t, done = time_preprocessor(pres[n], batches, args.data_images, device)
                else:
                    t, done = time_samples(per_sample[n], paths, args.data_images), \
                        args.data_images
                cpu_rates[n].append(done / max(time.process_time() - cpu0, 1e-9))
                rates[n].append(done / t)
                progress(f'round {r + 1}/{args.data_rounds} {n}: {done / t:.0f} images/s')
        decoding = check_decoding(paths[:8], device) if device.type == 'cuda' else None
    finally:
        if previous and hasattr(os, 'sched_setaffinity'):
            os.sched_setaffinity(0, previous)
    load_after = os.getloadavg()
    rows = []
    for n in names:
        med = float(statistics.median(rates[n]))
        rows.append(dict(name=n, label=LABELS[n].format(device=device.type),
                         images_per_s=med,
                         images_per_cpu_s=float(statistics.median(cpu_rates[n])),
                         spread=(max(rates[n]) - min(rates[n])) / med if med else None,
                         per_core=not (n in PREPROCESSORS and device.type == 'cuda'),
                         device=device.type if n in PREPROCESSORS else 'cpu'))
    shipped = next((r['images_per_s'] for r in rows if r['name'] == 'shipped'), None)
    demand = gpu_demand(args)
    shipped_cpu = next((r['images_per_cpu_s'] for r in rows if r['name'] == 'shipped'), None)
    for row in rows:
        row['ratio'] = row['images_per_s'] / shipped if shipped else None
        row['cpu_ratio'] = row['images_per_cpu_s'] / shipped_cpu if shipped_cpu else None
        # a GPU's workers run on cores of their own: the CPU-time rate is what one delivers
        row['cores_per_gpu'] = {
            k: (v['images_per_s'] / row['images_per_cpu_s'] if row['per_core'] else None)
            for k, v in demand.items()}
        if not row['per_core']:  # the GPU's own decode rate: the share of its time it takes
            row['gpu_time_share'] = {k: v['images_per_s'] / row['images_per_s']
                                     for k, v in demand.items()}
    meta = dict(
        dali_not_installed=args.data_pipelines is None and 'dali-preproc' not in names,
        command='python -m tools.analysis.benchmark ' + ' '.join(sys.argv[1:]),
        date=datetime.now(timezone.utc).isoformat(timespec='seconds'),
        cpu=platform.processor() or platform.machine(), cpus=os.cpu_count(), core=core,
        load_before=[round(x, 2) for x in load_before],
        load_after=[round(x, 2) for x in load_after], device=str(device),
        torch=torch.__version__, images=len(paths), content=images['content'],
        mean_bytes=images['mean_bytes'], quality=images.get('quality'),
        images_per_round=args.data_images,
        rounds=args.data_rounds, batch=batch, decoding=decoding)
    try:
        import torchvision
        meta['torchvision'] = torchvision.__version__
    except ImportError:  # pragma: no cover
        pass
    return dict(meta=meta, rows=rows, demand=demand)


def render(result: dict, markdown: bool = False) -> str:
    """The table (console text or Markdown)."""
    meta, rows, demand = result['meta'], result['rows'], result['demand']
    head = ['pipeline', 'img/s per core', 'spread', 'x shipped', 'img/CPU-s', 'x shipped'] + \
        [f'cores/GPU for {k} ({v["images_per_s"]:.0f} img/s)' for k, v in demand.items()]
    lines = []
    for r in rows:
        rate = f'{r["images_per_s"]:.0f}' + ('' if r['per_core'] else ' (GPU)')
        cells = [r['label'], rate, f'{r["spread"]:.0%}' if r['spread'] is not None else '',
                 f'{r["ratio"]:.2f}' if r['ratio'] else '',
                 f'{r["images_per_cpu_s"]:.0f}' if r['per_core'] else '',
                 f'{r["cpu_ratio"]:.2f}' if r['per_core'] and r['cpu_ratio'] else '']
        for k in demand:
            c = r['cores_per_gpu'][k]
            cells.append(f'{c:.1f}' if c is not None else
                         f'{r["gpu_time_share"][k]:.0%} of GPU time')
        lines.append(cells)
    quality = f', quality {meta["quality"]}' if meta.get('quality') else ''
    notes = [f'{meta["images"]} JPEGs ({meta["content"]}{quality}, mean '
             f'{meta["mean_bytes"] / 1024:.0f} KiB), {meta["images_per_round"]} images x {meta["rounds"]} interleaved rounds, '
             f'median; one process pinned to core {meta["core"]} of {meta["cpus"]}, 1 torch '
             f'thread, OpenCV threads off; load average {meta["load_before"][0]:.2f} before, '
             f'{meta["load_after"][0]:.2f} after',
             'img/s per core: per wall-clock second (what a worker delivers on this machine '
             'now); img/CPU-s: per second of this process\'s CPU time (what it would deliver '
             'on an otherwise idle core; the same as the first on a quiet machine); cores per '
             'GPU from the second',
             f'torch {meta["torch"]}, torchvision {meta.get("torchvision", "?")}, '
             f'device {meta["device"]}; command: {meta["command"]}']
    if meta.get('dali_not_installed'):
        notes.append('dali-preproc not timed: NVIDIA DALI is not installed (optional: pip '
                     'install nvidia-dali-cuda120)')
    if not demand:
        notes.append('cores per GPU: no GPU throughput known (pass --gpu-img-s NAME=IMG_S, '
                     '--step-time S --step-batch B, or --bench-json of a GPU benchmark run)')
    for k, v in demand.items():
        notes.append(f'{k}: {v["images_per_s"]:.0f} img/s per GPU ({v["source"]})')
    if meta.get('decoding'):
        d = meta['decoding']
        notes.append(f'{d["device"]} decoding vs OpenCV: max {d["max_abs"]}, mean '
                     f'{d["mean_abs"]:.3f} grey levels')
    if markdown:
        out = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
        out += ['| ' + ' | '.join(c) + ' |' for c in lines]
        return '\n'.join(out + [''] + [f'* {n}' for n in notes]) + '\n'
    widths = [max(len(str(x)) for x in col) for col in zip(head, *lines)]
    fmt = '  '.join(f'{{:<{w}}}' for w in widths)
    out = [fmt.format(*head), fmt.format(*['-' * w for w in widths])]
    out += [fmt.format(*c) for c in lines]
    return '\n'.join(out + [''] + notes)


def main(args, device: torch.device, progress=print) -> dict:
    """Run, print the table, write ``<out-dir>/<stem>.json`` and ``.md``."""
    result = run(args, device, progress)
    print(render(result))
    os.makedirs(args.out_dir, exist_ok=True)
    stem = osp.join(args.out_dir, args.stem)
    with open(stem + '.json', 'w') as f:
        json.dump(result, f, indent=2)
    with open(stem + '.md', 'w') as f:
        f.write(render(result, markdown=True))
    print(f'wrote {stem}.json and {stem}.md')
    return result
