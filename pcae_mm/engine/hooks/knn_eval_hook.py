"""Online weighted kNN evaluation of the student (and EMA teacher) during pre-training; the
kNN maths is :mod:`pcae_mm.evaluation.knn`."""
import math
from typing import Dict, List, Optional, Sequence, Tuple

from mmengine.hooks import Hook
from mmengine.model import BaseAveragedModel, is_model_wrapper
from mmpretrain.registry import HOOKS
from torch import nn

from pcae_mm.evaluation.knn import check_knn_settings, knn_accuracies


def find_ema_teacher(model: nn.Module) -> Optional[nn.Module]:
    """The network inside the model's EMA teacher, or None.

    Looks for ``model.teacher``; an :class:`mmengine.model.BaseAveragedModel` (pcae_mm's
    ``EMATeacher``) is unwrapped to its ``.module``, and a teacher object exposing ``backbone``
    to that backbone. Frozen pre-trained teachers (MR-MAE) are not EMA teachers: None.
    """
    teacher = getattr(model, 'teacher', None)
    if teacher is None:
        return None
    if isinstance(teacher, BaseAveragedModel):
        teacher = teacher.module
    elif not any(isinstance(m, BaseAveragedModel) for m in teacher.modules()):
        return None
    if isinstance(getattr(teacher, 'backbone', None), nn.Module):
        teacher = teacher.backbone
    if isinstance(teacher, BaseAveragedModel):
        teacher = teacher.module
    return teacher


@HOOKS.register_module()
class KNNEvalHook(Hook):
    """Weighted kNN accuracy of the learnt features, logged during pre-training.

    Every ``interval`` epochs (or iterations with ``by_epoch=False``), at the end of training,
    and once before the first step (``eval_at_start``: the random-initialisation baseline), the
    hook embeds a labelled bank (train subset) and query set (val) with the student backbone,
    and with the EMA teacher's backbone where the model has one, in eval mode and without
    masking (``backbone(x, mask=False)``), then scores weighted kNN (cosine similarity, ``k``
    neighbours voting ``exp(sim / temperature)``, DINO's protocol). Results go to

    * the runner's visualiser (``scalars.json``, TensorBoard, ...) at step ``runner.iter``,
    * the message hub (``runner.message_hub.get_scalar('knn/student_top1')``; the history of
      that scalar holds every evaluation, the first one the random-init value),
    * the log, with the best value so far (``knn/student_top1_best``).

    Keys: ``knn/{student,teacher}_top{1,5}`` and ``knn/{student,teacher}_top1_best``.

    The maths is :func:`pcae_mm.evaluation.knn.knn_accuracies` (also run offline by
    ``tools/analysis/knn_eval.py``). Distributed: each rank embeds its share of the data
    (``DefaultSampler``), features, labels and dataset indices are gathered from all ranks and
    de-duplicated, and every rank computes the same accuracies. Memory: the bank is held once
    (N x C), queries are scored in chunks of ``chunk_size``.

    Cost: one forward pass of the unmasked encoder per bank and query image and network (one
    pass over the data serves student and teacher; no backward, no decoder). Measured on one
    loaded CPU thread in the digits learning tests (4-block 64-wide ViT, 32 px, patch 4, 1300
    bank + 497 query images, 1300 training images): about 4 s per network, i.e. about one
    training epoch per network, because the bank is 1.4x the training set and every image is
    encoded on all 64 patches instead of the student's 16. For ImageNet ViT-B/16 with the
    benchmark config's bank (100 images per class, 100k) and the 50k val queries it is
    150k x 17.6 GMACs against 1.28M x about 23 GMACs (PCAE training step), about 9% of an epoch
    per network: every 10 epochs costs about 1% (2% with the teacher).

    Args:
        bank_dataloader (dict | DataLoader): Labelled train subset (the kNN bank); built with
            ``runner.build_dataloader``. Use a deterministic pipeline and
            ``sampler=dict(type='DefaultSampler', shuffle=False)``.
        query_dataloader (dict | DataLoader): Labelled queries (val).
        interval (int): Evaluate every ``interval`` epochs / iterations. Defaults to 1.
        by_epoch (bool): Count ``interval`` in epochs. Defaults to True.
        k (int): Neighbours. Defaults to 20.
        temperature (float): Vote temperature. Defaults to 0.07.
        pool (str): ``'cls'`` token or ``'mean'`` of the patch tokens. Defaults to ``'cls'``.
        topk (Sequence[int]): Accuracies to log. Defaults to (1, 5).
        eval_teacher (bool): Also score the EMA teacher when there is one. Defaults to True.
        eval_at_start (bool): Score once before training (random init / loaded weights; not
            on resume). Defaults to True.
        num_classes (int, optional): Defaults to the bank's largest label + 1.
        chunk_size (int): Queries per similarity chunk. Defaults to 256.
        backbone_attr (str): Attribute of the model holding the student. Defaults to
            ``'backbone'``.
        prefix (str): Scalar key prefix. Defaults to ``'knn'``.
    """

    priority = 'LOW'  # after EMATeacherHook (ABOVE_NORMAL) has updated the teacher

    def __init__(self,
                 bank_dataloader,
                 query_dataloader,
                 interval: int = 1,
                 by_epoch: bool = True,
                 k: int = 20,
                 temperature: float = 0.07,
                 pool: str = 'cls',
                 topk: Sequence[int] = (1, 5),
                 eval_teacher: bool = True,
                 eval_at_start: bool = True,
                 num_classes: Optional[int] = None,
                 chunk_size: int = 256,
                 backbone_attr: str = 'backbone',
                 prefix: str = 'knn') -> None:
        check_knn_settings(k, temperature, pool)
        if interval < 1:
            raise ValueError(f'interval must be >= 1, got {interval}')
        self.bank_dataloader = bank_dataloader
        self.query_dataloader = query_dataloader
        self.interval = interval
        self.by_epoch = by_epoch
        self.k = k
        self.temperature = temperature
        self.pool = pool
        self.topk = tuple(topk)
        self.eval_teacher = eval_teacher
        self.eval_at_start = eval_at_start
        self.num_classes = num_classes
        self.chunk_size = chunk_size
        self.backbone_attr = backbone_attr
        self.prefix = prefix
        self.best: Dict[str, float] = {}
        # (step, {key: value}) of every evaluation, first = random init
        self.history: List[Tuple[int, Dict[str, float]]] = []
        self._last_step = None

    # ------------------------------------------------------------------ runner events
    def before_train(self, runner) -> None:
        for name in ('bank_dataloader', 'query_dataloader'):
            loader = getattr(self, name)
            if isinstance(loader, dict):
                setattr(self, name, runner.build_dataloader(loader, seed=runner.seed))
        hub = runner.message_hub
        for key in list(hub.runtime_info):  # best values survive a resume
            if key.startswith(f'{self.prefix}/') and key.endswith('_best'):
                self.best[key[len(self.prefix) + 1:]] = hub.get_info(key)
        if self.eval_at_start and runner.iter == 0:
            self.evaluate(runner, step=0)

    def after_train_epoch(self, runner) -> None:
        if self.by_epoch and (self.every_n_epochs(runner, self.interval)
                              or self.is_last_train_epoch(runner)):
            self.evaluate(runner, step=runner.iter)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if not self.by_epoch and (self.every_n_train_iters(runner, self.interval)
                                  or self.is_last_train_iter(runner)):
            self.evaluate(runner, step=runner.iter + 1)

    # ------------------------------------------------------------------ evaluation
    def networks(self, model: nn.Module) -> Dict[str, nn.Module]:
        """``{'student': backbone, 'teacher': EMA teacher backbone}`` (teacher if present) of
        the unwrapped ``model``."""
        nets = {'student': getattr(model, self.backbone_attr)}
        teacher = find_ema_teacher(model) if self.eval_teacher else None
        if teacher is not None:
            nets['teacher'] = teacher
        return nets

    def evaluate(self, runner, step: Optional[int] = None) -> Dict[str, float]:
        """Score every network now; log, record and return ``{key: accuracy}``.

        Args:
            step (int, optional): Iterations trained so far (the scalars' step). Defaults to
                ``runner.iter``.
        """
        step = runner.iter if step is None else step
        if self._last_step == step:  # e.g. the last epoch is also an interval epoch
            return {}
        self._last_step = step
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        nets = self.networks(model)
        acc = knn_accuracies(nets, self.bank_dataloader, self.query_dataloader,
                             model.data_preprocessor, self.k, self.temperature, self.pool,
                             self.topk, self.num_classes, self.chunk_size)
        results = {}
        for name in nets:  # name_top1, name_top5, name_top1_best per network
            results.update({k: v for k, v in acc.items() if k.startswith(f'{name}_top')})
            key = f'{name}_top{self.topk[0]}'
            self.best[f'{key}_best'] = max(self.best.get(f'{key}_best', -math.inf), results[key])
            results[f'{key}_best'] = self.best[f'{key}_best']
        scalars = {f'{self.prefix}/{k}': v for k, v in results.items()}
        for key, value in scalars.items():
            runner.message_hub.update_scalar(key, value)
            if key.endswith('_best'):
                runner.message_hub.update_info(key, value)
        runner.visualizer.add_scalars(scalars, step=step)
        self.history.append((step, dict(results)))
        runner.logger.info(f'kNN (k={self.k}, T={self.temperature}, {self.pool}) at iter {step}: '
                           + ', '.join(f'{k} {v:.2f}' for k, v in results.items()))
        return results

