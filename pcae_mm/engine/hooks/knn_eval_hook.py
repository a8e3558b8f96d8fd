"""Online weighted kNN evaluation of the student (and EMA teacher) during pre-training."""
import inspect
import math
from typing import Dict, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmengine.dist import all_gather, get_world_size
from mmengine.hooks import Hook
from mmengine.model import BaseAveragedModel, is_model_wrapper
from mmpretrain.registry import HOOKS
from torch import nn

POOLS = ('cls', 'mean')


@torch.no_grad()
def weighted_knn(query: torch.Tensor,
                 query_labels: torch.Tensor,
                 bank: torch.Tensor,
                 bank_labels: torch.Tensor,
                 num_classes: int,
                 k: int = 20,
                 temperature: float = 0.07,
                 topk: Sequence[int] = (1, 5),
                 chunk_size: int = 256) -> Dict[int, float]:
    """Weighted k-nearest-neighbour accuracy (DINO / InstDisc style), in percent.

    Features are L2-normalised; each query's ``k`` most cosine-similar bank features vote for
    their labels with weight ``exp(sim / temperature)``; the classes with most votes are the
    predictions. Similarities are computed ``chunk_size`` queries at a time, so memory stays
    ``chunk_size x len(bank)`` whatever the number of queries.

    Args:
        query (Tensor): Q x C query features.
        query_labels (Tensor): Q labels.
        bank (Tensor): N x C bank (train) features.
        bank_labels (Tensor): N labels.
        num_classes (int): Number of classes.
        k (int): Neighbours (capped at N). Defaults to 20.
        temperature (float): Vote temperature. Defaults to 0.07.
        topk (Sequence[int]): Accuracies to report (each capped at ``num_classes``).
        chunk_size (int): Queries per similarity chunk. Defaults to 256.

    Returns:
        dict: ``{k: accuracy in %}`` for each entry of ``topk``.
    """
    if query.shape[0] == 0 or bank.shape[0] == 0:
        raise ValueError('kNN needs a non-empty query set and bank')
    k = min(k, bank.shape[0])
    bank = F.normalize(bank.float(), dim=1)
    query = F.normalize(query.float().to(bank.device), dim=1)
    bank_labels = bank_labels.to(bank.device).long()
    query_labels = query_labels.to(bank.device).long()
    correct = {t: 0 for t in topk}
    for start in range(0, query.shape[0], chunk_size):
        q = query[start:start + chunk_size]  # b x C
        sim, idx = (q @ bank.T).topk(k, dim=1)  # b x k
        weights = (sim / temperature).exp()  # b x k
        votes = torch.zeros(q.shape[0], num_classes, device=bank.device)
        votes.scatter_add_(1, bank_labels[idx], weights)  # b x num_classes
        ranked = votes.argsort(dim=1, descending=True)  # b x num_classes
        hit = ranked == query_labels[start:start + chunk_size, None]  # b x num_classes
        for t in topk:
            correct[t] += int(hit[:, :min(t, num_classes)].any(dim=1).sum())
    return {t: 100.0 * c / query.shape[0] for t, c in correct.items()}


def pool_features(out, pool: str = 'cls') -> torch.Tensor:
    """One B x C vector per image from a backbone's output.

    Args:
        out: A backbone output: a tuple (the last entry is used) or a tensor of shape
            B x C (already pooled), B x N x C (tokens, cls first) or B x C x H x W (feature map).
        pool (str): For tokens: ``'cls'`` (the first token) or ``'mean'`` (mean of the others).

    Returns:
        Tensor: B x C.
    """
    if isinstance(out, (tuple, list)):
        out = out[-1]
    if isinstance(out, (tuple, list)):  # e.g. (patch tokens, cls) pairs
        out = out[-1]
    if out.dim() == 2:
        return out
    if out.dim() == 3:
        return out[:, 0] if pool == 'cls' else out[:, 1:].mean(dim=1)
    if out.dim() == 4:
        return out.mean(dim=(2, 3))
    raise ValueError(f'cannot pool a backbone output of shape {tuple(out.shape)}')


def unmasked_forward(backbone: nn.Module, inputs: torch.Tensor):
    """``backbone(inputs, mask=False)`` for MIM backbones, ``backbone(inputs)`` for others."""
    try:
        takes_mask = 'mask' in inspect.signature(backbone.forward).parameters
    except (TypeError, ValueError):  # pragma: no cover - builtins
        takes_mask = False
    return backbone(inputs, mask=False) if takes_mask else backbone(inputs)


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

    Distributed: each rank embeds its share of the data (``DefaultSampler``), features, labels
    and dataset indices are gathered with :func:`mmengine.dist.all_gather` and de-duplicated, and
    every rank computes the same accuracies. Memory: the bank is held once (N x C), queries are
    scored in chunks of ``chunk_size``.

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
        if pool not in POOLS:
            raise ValueError(f'pool must be one of {POOLS}, got {pool!r}')
        if interval < 1 or k < 1 or temperature <= 0:
            raise ValueError('interval and k must be >= 1 and temperature > 0, got '
                             f'{interval}, {k}, {temperature}')
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
        self.history = []  # (step, {key: value}) of every evaluation, first = random init
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
    def networks(self, runner) -> Dict[str, nn.Module]:
        """``{'student': backbone, 'teacher': EMA teacher backbone}`` (teacher if present)."""
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        nets = {'student': getattr(model, self.backbone_attr)}
        teacher = find_ema_teacher(model) if self.eval_teacher else None
        if teacher is not None:
            nets['teacher'] = teacher
        return nets

    @torch.no_grad()
    def embed(self, runner, nets: Dict[str, nn.Module],
              loader) -> Dict[str, Tuple[torch.Tensor, torch.Tensor]]:
        """Features and labels of a whole dataloader for every network (one pass over the
        data), gathered from all ranks, in dataset order.

        Returns:
            dict: name -> (N x C features on the model's device, N labels).
        """
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        feats = {name: [] for name in nets}
        labels, ids = [], []
        for data in loader:
            data = model.data_preprocessor(data, False)
            inputs = data['inputs']
            if isinstance(inputs, (list, tuple)):  # SelfSupDataPreprocessor: list of views
                inputs = inputs[0]
            for name, net in nets.items():
                feats[name].append(
                    pool_features(unmasked_forward(net, inputs), self.pool).float())
            samples = data['data_samples']
            labels.append(torch.cat([s.gt_label.view(-1)[:1] for s in samples]))
            ids.append(torch.tensor([s.metainfo.get('sample_idx', -1) for s in samples]))
        device = inputs.device
        labels = torch.cat(labels).to(device)
        ids = torch.cat(ids).to(device)
        out = {}
        for name in nets:
            f, lab, idx = torch.cat(feats[name]), labels, ids
            if get_world_size() > 1:
                f, lab, idx = self._gather(f, lab, idx)
            if (idx >= 0).all():  # dataset order, without the sampler's padding duplicates
                idx, order = idx.sort()
                first = torch.ones_like(idx, dtype=torch.bool)
                first[1:] = idx[1:] != idx[:-1]
                order = order[first]
                f, lab = f[order], lab[order]
            out[name] = (f, lab)
        return out

    @staticmethod
    def _gather(*tensors: torch.Tensor):
        n = tensors[0].shape[0]
        sizes = all_gather(torch.tensor([n], device=tensors[0].device))
        longest = int(max(int(s) for s in sizes))
        out = []
        for t in tensors:
            pad = torch.zeros((longest - n, ) + tuple(t.shape[1:]), dtype=t.dtype,
                              device=t.device)
            parts = all_gather(torch.cat([t, pad]))
            out.append(torch.cat([p[:int(s)] for p, s in zip(parts, sizes)]))
        return out

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
        results = {}
        nets = self.networks(runner)
        modes = {name: net.training for name, net in nets.items()}
        try:
            for net in nets.values():
                net.eval()
            banks = self.embed(runner, nets, self.bank_dataloader)
            queries = self.embed(runner, nets, self.query_dataloader)
        finally:
            for name, net in nets.items():
                net.train(modes[name])
        for name in nets:
            bank, bank_labels = banks[name]
            query, query_labels = queries[name]
            num_classes = self.num_classes or int(bank_labels.max()) + 1
            acc = weighted_knn(query, query_labels, bank, bank_labels, num_classes, self.k,
                               self.temperature, self.topk, self.chunk_size)
            for t, value in acc.items():
                results[f'{name}_top{t}'] = value
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


def knn_summary(history: Sequence[Tuple[int, Dict[str, float]]]) -> Dict[str, Tuple[float, float]]:
    """``{key: (first, last)}`` from :attr:`KNNEvalHook.history` (first = random init when
    ``eval_at_start``), e.g. for a summary table: ``{'student_top1': (23.1, 71.4), ...}``."""
    if not history:
        return {}
    first, last = history[0][1], history[-1][1]
    return {k: (first[k], last[k]) for k in first if k in last and not k.endswith('_best')}
