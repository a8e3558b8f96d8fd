"""Weighted kNN accuracy of frozen features (DINO / InstDisc protocol), as pure functions.

One pass of each network over a labelled bank (train subset) and query set (val) gives
``N x C`` and ``Q x C`` features; each query's ``k`` most cosine-similar bank features vote for
their labels with weight ``exp(sim / T)``. Used by the online
:class:`~pcae_mm.engine.hooks.KNNEvalHook`, the offline ``tools/analysis/knn_eval.py`` and the
demo's learning check (``tools/tiny_data/digits_knn.py``); nothing here is registered.

Distributed: :func:`extract_features` gathers every rank's share (``DefaultSampler``) and puts
it back in dataset order without the sampler's padding duplicates, so every rank scores the
same features.
"""
import inspect
from typing import Callable, Dict, Iterable, Mapping, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmengine.dist import all_gather, get_world_size
from torch import nn

POOLS = ('cls', 'mean')

#: ``{network name: (N x C features, N labels)}``, what :func:`extract_features` returns.
Features = Dict[str, Tuple[torch.Tensor, torch.Tensor]]


def check_knn_settings(k: int, temperature: float, pool: str) -> None:
    """Raise a ValueError naming the bad kNN setting (before any feature is computed)."""
    if pool not in POOLS:
        raise ValueError(f'pool must be one of {POOLS}, got {pool!r}')
    if k < 1 or temperature <= 0:
        raise ValueError(f'k must be >= 1 and temperature > 0, got k={k}, '
                         f'temperature={temperature}')


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
    ``chunk_size x N`` whatever the number of queries.

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
        dict: ``{t: accuracy in %}`` for each entry ``t`` of ``topk``.
    """
    if query.shape[0] == 0 or bank.shape[0] == 0:
        raise ValueError('kNN needs a non-empty query set and bank')
    k = min(k, bank.shape[0])
    bank = F.normalize(bank.float(), dim=1)  # N x C
    query = F.normalize(query.float().to(bank.device), dim=1)  # Q x C
    bank_labels = bank_labels.to(bank.device).long()  # N
    query_labels = query_labels.to(bank.device).long()  # Q
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
    if out.dim() == 2:  # B x C
        return out
    if out.dim() == 3:  # B x N x C
        return out[:, 0] if pool == 'cls' else out[:, 1:].mean(dim=1)
    if out.dim() == 4:  # B x C x H x W
        return out.mean(dim=(2, 3))
    raise ValueError(f'cannot pool a backbone output of shape {tuple(out.shape)}')


def unmasked_forward(backbone: nn.Module, inputs: torch.Tensor):
    """``backbone(inputs, mask=False)`` for MIM backbones, ``backbone(inputs)`` for others."""
    try:
        takes_mask = 'mask' in inspect.signature(backbone.forward).parameters
    except (TypeError, ValueError):  # pragma: no cover - builtins
        takes_mask = False
    return backbone(inputs, mask=False) if takes_mask else backbone(inputs)


def gather_from_ranks(*tensors: torch.Tensor) -> Tuple[torch.Tensor, ...]:
    """Every rank's ``tensors`` (same first dimension per rank, possibly different across
    ranks), concatenated in rank order on every rank."""
    n = tensors[0].shape[0]
    sizes = all_gather(torch.tensor([n], device=tensors[0].device))
    longest = int(max(int(s) for s in sizes))
    out = []
    for t in tensors:
        pad = torch.zeros((longest - n, ) + tuple(t.shape[1:]), dtype=t.dtype, device=t.device)
        parts = all_gather(torch.cat([t, pad]))
        out.append(torch.cat([p[:int(s)] for p, s in zip(parts, sizes)]))
    return tuple(out)


def in_dataset_order(feats: torch.Tensor, labels: torch.Tensor,
                     ids: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """N x C features and N labels sorted by dataset index ``ids`` (N), each index once (a
    distributed sampler pads with repeats). Unchanged when some index is unknown (-1)."""
    if not (ids >= 0).all():
        return feats, labels
    ids, order = ids.sort()
    first = torch.ones_like(ids, dtype=torch.bool)
    first[1:] = ids[1:] != ids[:-1]
    order = order[first]
    return feats[order], labels[order]


@torch.no_grad()
def extract_features(nets: Mapping[str, nn.Module], loader: Iterable[dict],
                     preprocess: Callable[[dict, bool], dict], pool: str = 'cls') -> Features:
    """Pooled features and labels of a whole labelled dataloader for every network, in one
    pass over the data, gathered from all ranks, in dataset order.

    The networks run as they are (call :func:`knn_accuracies`, which sets eval mode).

    Args:
        nets (Mapping[str, nn.Module]): Backbones by name, e.g. ``{'student': ...}``.
        loader (Iterable[dict]): Batches of ``inputs`` and ``data_samples`` with ``gt_label``
            (and ``sample_idx`` in their metainfo for the dataset order).
        preprocess (Callable): The model's data preprocessor, called as
            ``preprocess(batch, False)``; a list of views (``SelfSupDataPreprocessor``) gives its
            first view.
        pool (str): ``'cls'`` or ``'mean'`` (:func:`pool_features`).

    Returns:
        dict: name -> (N x C float features on the inputs' device, N labels).
    """
    feats = {name: [] for name in nets}
    labels, ids = [], []
    inputs = None
    for data in loader:
        data = preprocess(data, False)
        inputs = data['inputs']
        if isinstance(inputs, (list, tuple)):  # SelfSupDataPreprocessor: list of views
            inputs = inputs[0]  # B x 3 x H x W
        for name, net in nets.items():
            feats[name].append(pool_features(unmasked_forward(net, inputs), pool).float())
        samples = data['data_samples']
        labels.append(torch.cat([s.gt_label.view(-1)[:1] for s in samples]))  # B
        ids.append(torch.tensor([s.metainfo.get('sample_idx', -1) for s in samples]))  # B
    if inputs is None:
        raise ValueError('kNN: the dataloader is empty')
    labels_all = torch.cat(labels).to(inputs.device)  # N
    ids_all = torch.cat(ids).to(inputs.device)  # N
    out = {}
    for name in nets:
        f, lab, idx = torch.cat(feats[name]), labels_all, ids_all  # N x C, N, N
        if get_world_size() > 1:
            f, lab, idx = gather_from_ranks(f, lab, idx)
        out[name] = in_dataset_order(f, lab, idx)
    return out


def knn_accuracies(nets: Mapping[str, nn.Module],
                   bank_loader: Iterable[dict],
                   query_loader: Iterable[dict],
                   preprocess: Callable[[dict, bool], dict],
                   k: int = 20,
                   temperature: float = 0.07,
                   pool: str = 'cls',
                   topk: Sequence[int] = (1, 5),
                   num_classes: Optional[int] = None,
                   chunk_size: int = 256) -> Dict[str, float]:
    """Weighted kNN accuracy of every network: embed the bank and the queries in eval mode
    (each network's training flag is restored afterwards), then :func:`weighted_knn`.

    Args:
        nets, preprocess, pool: As in :func:`extract_features`.
        bank_loader, query_loader: Labelled dataloaders of the bank and the queries.
        k, temperature, topk, chunk_size: As in :func:`weighted_knn`.
        num_classes (int, optional): Defaults to the largest bank label + 1.

    Returns:
        dict: ``{'<name>_top<t>': accuracy in %}``, e.g. ``{'student_top1': 71.4, ...}``.
    """
    check_knn_settings(k, temperature, pool)
    modes = {name: net.training for name, net in nets.items()}
    try:
        for net in nets.values():
            net.eval()
        banks = extract_features(nets, bank_loader, preprocess, pool)
        queries = extract_features(nets, query_loader, preprocess, pool)
    finally:
        for name, net in nets.items():
            net.train(modes[name])
    results = {}
    for name in nets:
        bank, bank_labels = banks[name]  # N x C, N
        query, query_labels = queries[name]  # Q x C, Q
        classes = num_classes or int(bank_labels.max()) + 1
        acc = weighted_knn(query, query_labels, bank, bank_labels, classes, k, temperature,
                           topk, chunk_size)
        results.update({f'{name}_top{t}': value for t, value in acc.items()})
    return results


def knn_summary(history: Sequence[Tuple[int, Dict[str, float]]]) -> Dict[str, Tuple[float, float]]:
    """``{key: (first, last)}`` from :attr:`KNNEvalHook.history` (first = random init when
    ``eval_at_start``), e.g. for a summary table: ``{'student_top1': (23.1, 71.4), ...}``."""
    if not history:
        return {}
    first, last = history[0][1], history[-1][1]
    return {k: (first[k], last[k]) for k in first if k in last and not k.endswith('_best')}
