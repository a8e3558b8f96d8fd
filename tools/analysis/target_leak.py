"""What a feature-target MIM run's loss needs from the image (PCAE's short-run investigation).

A masked-image model learns a representation only if its decoder must read the visible patches
to predict the targets. This tool pre-trains a method on the digits (``tools/tiny_data/
digits_knn.py``) and measures, at random init and after training, on the 497 held-out digits
(one fixed mask per image, eval mode):

* ``loss``: the model's own ``1 - cos(pred, standardised target)``;
* ``loss_const``: the same for ONE vector predicted everywhere (the mean normalised target over
  the 1300 training digits). Near 0 = the targets do not vary: they carry no information
  (target entropy; a collapsed teacher);
* ``loss_pos``: a decoder that ignores the image and predicts, at each queried position, the
  mean normalised target seen at that position in the training digits (position leak). Close to
  ``loss`` = the query positions alone explain what the decoder predicts;
* ``content_use``: the loss when every image's visible latents (with their positions) are those
  of another image, over ``loss``. 1.0 = the decoder ignores the encoder (issue 14's probe);
* ``position_entropy``: how evenly the predicted patches spread over the grid (1.0 = uniform;
  low = the same few positions in every image);
* ``selected_intensity`` / ``masked_intensity``: mean normalised pixel value of the predicted
  patches and of all masked patches; ``selected_ink`` / ``masked_ink``: the share of them that
  are ink (mean above mid-grey) - which patches PCAE's similarity ranking keeps;
* ``teacher_drift`` / ``student_drift``: ``|w - w0| / |w0|`` over the weights since init, and
  ``teacher_student``: ``|w_T - w_S| / |w_S|`` (EMA teachers).

Run from the repository root (one CPU thread is enough; about 1.5 min of CPU for 40 epochs)::

    python -m tools.analysis.target_leak pcae --epochs 40
    python -m tools.analysis.target_leak pcae --model "{'token_reduction.mode': 'random'}"

Supports the methods whose decoder is called as ``neck(latent, ids_keep, ids_pred)`` (PCAE,
SdAE, MAE, PR-MIM without its progressive head in the probe).
"""
import argparse
import json
import math
import tempfile
import time
from typing import Dict, Optional

import torch
import torch.nn.functional as F
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from tools.tiny_data.configs import TINY_CONFIGS
from tools.tiny_data.digits_knn import IMG, PATCH, pretrain_knn


def digits_inputs(model, split: str, size: int) -> torch.Tensor:
    """The digits of ``split`` as the model's normalised inputs, N x 3 x size x size."""
    from pcae_mm.datasets import DigitsDataset
    ds = DigitsDataset(split=split, size=size, pipeline=[dict(type='PackInputs')])
    images = [ds[i]['inputs'] for i in range(len(ds))]
    out = model.data_preprocessor(dict(inputs=[torch.stack(images)], data_samples=None),
                                  False)['inputs']  # SelfSupDataPreprocessor: a list of views
    return out[0] if isinstance(out, (list, tuple)) else out


def _unit(x: torch.Tensor) -> torch.Tensor:
    from pcae_mm.models.utils.targets import standardize
    return F.normalize(standardize(x.float()), dim=-1)


@torch.no_grad()
def predictions(model, inputs: torch.Tensor, seed: int = 0, chunk: int = 256) -> Dict:
    """One masked step per image (eval mode, seeded masks): normalised targets and predictions,
    predictions from another image's visible latents, ids, and patch intensities."""
    from pcae_mm.models.utils.targets import patch_pixels
    was_training = model.training
    model.eval()
    rng = torch.random.get_rng_state()  # the probe must not change the run it measures
    torch.manual_seed(seed)
    parts = []
    for i in range(0, len(inputs), chunk):
        x = inputs[i:i + chunk]
        out = model.forward_mim(x)
        swap = model.neck(out.latent.roll(1, 0), out.ids_keep.roll(1, 0), out.ids_pred)
        pix = model.backbone.patch_size
        parts.append(dict(
            target=_unit(out.target), pred=F.normalize(out.pred.float(), dim=-1),
            swap=F.normalize(swap.float(), dim=-1), ids=out.ids_pred,
            selected=patch_pixels(x, out.ids_pred, pix).mean(-1),
            masked=patch_pixels(x, out.ids_masked, pix).mean(-1)))
    model.train(was_training)
    torch.random.set_rng_state(rng)
    return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}


def _loss(pred: torch.Tensor, target: torch.Tensor) -> float:
    return float((1 - (pred * target).sum(-1)).mean())


def position_entropy(ids: torch.Tensor, num_patches: int) -> float:
    """Entropy of where the predicted patches lie, over ``log(num_patches)``: 1.0 = every
    position equally often (random masks, random survivors), low = a few fixed positions."""
    p = torch.bincount(ids.reshape(-1), minlength=num_patches).float()
    p = p / p.sum()
    return float(-(p[p > 0] * p[p > 0].log()).sum() / math.log(num_patches))


def leak_report(model, fit: torch.Tensor, held_out: torch.Tensor) -> Dict[str, float]:
    """The measures of the module doc; predictors fit on ``fit``, scored on ``held_out``."""
    a, b = predictions(model, fit, seed=0), predictions(model, held_out, seed=1)
    C = a['target'].shape[-1]
    const = F.normalize(a['target'].reshape(-1, C).mean(0), dim=0)
    L = model.backbone.num_patches
    sums = torch.zeros(L, C).index_add_(0, a['ids'].reshape(-1), a['target'].reshape(-1, C))
    seen = torch.zeros(L).index_add_(0, a['ids'].reshape(-1),
                                     torch.ones(a['ids'].numel())) > 0
    per_pos = torch.where(seen[:, None], F.normalize(sums, dim=-1), const.expand(L, C))
    loss = _loss(b['pred'], b['target'])
    return dict(
        loss=loss,
        loss_const=_loss(const.expand_as(b['target']), b['target']),
        loss_pos=_loss(per_pos[b['ids']], b['target']),
        content_use=_loss(b['swap'], b['target']) / max(loss, 1e-12),
        position_entropy=position_entropy(b['ids'], L),
        selected_intensity=float(b['selected'].mean()),
        masked_intensity=float(b['masked'].mean()),
        selected_ink=float((b['selected'] > 0).float().mean()),
        masked_ink=float((b['masked'] > 0).float().mean()),
        targets_per_image=int(b['ids'].shape[1]))


def _flat(module) -> torch.Tensor:
    return torch.cat([p.detach().float().flatten() for p in module.parameters()
                      if p.dtype.is_floating_point])


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm().clamp_min(1e-12))


class TargetLeakProbe(Hook):
    """Runs :func:`leak_report` before the first and after the last step (and every ``every``
    epochs: ``results['epoch_<n>']``), with the drifts."""

    priority = 'LOW'

    def __init__(self, img_size: int, every: int = 0) -> None:
        self.img_size = img_size
        self.every = every
        self.results: Dict[str, Dict[str, float]] = {}
        self._init = {}

    def after_train_epoch(self, runner) -> None:
        if self.every and (runner.epoch + 1) % self.every == 0 and (
                runner.epoch + 1) < runner.max_epochs:
            self._measure(runner, f'epoch_{runner.epoch + 1}')

    def _measure(self, runner, when: str) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        fit = digits_inputs(model, 'train', self.img_size)
        held = digits_inputs(model, 'val', self.img_size)
        res = leak_report(model, fit, held)
        student = _flat(model.backbone)
        teacher = getattr(model, 'teacher', None)
        teacher = _flat(teacher.module) if hasattr(teacher, 'module') else None
        if when == 'init':
            self._init = dict(student=student.clone(),
                              teacher=None if teacher is None else teacher.clone())
        elif self._init:
            res['student_drift'] = _rel(student, self._init['student'])
            if teacher is not None:
                res['teacher_drift'] = _rel(teacher, self._init['teacher'])
        if teacher is not None:
            res['teacher_student'] = _rel(teacher, student)
        self.results[when] = res
        runner.logger.info(f'target leak at {when}: {res}')

    def before_train(self, runner) -> None:
        self._measure(runner, 'init')

    def after_train(self, runner) -> None:
        self._measure(runner, 'final')


def run(method: str, epochs: int = 40, img_size: int = IMG, patch_size: int = PATCH,
        seed: int = 0, model: Optional[dict] = None, work_dir: Optional[str] = None,
        every: int = 0, **digits_kwargs) -> Dict:
    """Pre-train ``method`` on the digits with the probe; returns the kNN and the measures.
    ``digits_kwargs``: more :func:`~tools.tiny_data.digits_knn.digits_cfg` arguments."""
    probe = TargetLeakProbe(img_size, every)
    with tempfile.TemporaryDirectory() as tmp:
        knn = pretrain_knn(method, work_dir or tmp, epochs=epochs, img_size=img_size,
                           patch_size=patch_size, seed=seed, model=model, hooks=[probe],
                           **digits_kwargs)
    return dict(knn=knn, **probe.results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('method', choices=sorted(TINY_CONFIGS))
    parser.add_argument('--epochs', type=int, default=40)
    parser.add_argument('--img-size', type=int, default=IMG)
    parser.add_argument('--patch-size', type=int, default=PATCH)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--model', default='{}', help='python dict merged into cfg.model')
    parser.add_argument('--every', type=int, default=0,
                        help='also measure every N epochs (0: at init and at the end only)')
    parser.add_argument('--drop-path', default='config',
                        help="encoder and decoder drop path: a rate, or 'config' (as shipped)")
    parser.add_argument('--crop', type=float, nargs=2, default=None,
                        help='RandomResizedCrop scale range (default: the digits runner\'s)')
    args = parser.parse_args()
    t0 = time.time()
    extra = dict(drop_path=None if args.drop_path == 'config' else float(args.drop_path))
    if args.crop:
        extra['crop'] = tuple(args.crop)
    res = run(args.method, args.epochs, args.img_size, args.patch_size, args.seed,
              eval(args.model), every=args.every, **extra)
    res['seconds'] = round(time.time() - t0)
    print(json.dumps(_rounded(res)))


def _rounded(x):
    if isinstance(x, float):
        return round(x, 4)
    if isinstance(x, dict):
        return {k: _rounded(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_rounded(v) for v in x]
    return x


if __name__ == '__main__':
    main()
