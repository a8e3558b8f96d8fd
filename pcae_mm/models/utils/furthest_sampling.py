"""Batched furthest-point sampling and nearest-patch assignment on the patch grid (PR-MIM).

Patches are points on the ``h x w`` grid: patch id ``i`` sits at row ``i // w``, column
``i % w``. Distances are squared Euclidean grid distances, kept as integers so that every
comparison is exact. Ties are always broken toward the smaller patch id, which makes the
result a pure function of the input ids (deterministic whatever the device or the order the
candidates come in).
"""
from typing import Tuple

import torch


def grid_coordinates(ids: torch.Tensor, grid_size: Tuple[int, int]) -> torch.Tensor:
    """Grid coordinates of patch ids.

    Args:
        ids (Tensor): Patch ids, B x N (long).
        grid_size (tuple[int, int]): ``(h, w)`` patches per column and per row.

    Returns:
        Tensor: ``(row, col)`` per id, B x N x 2 (long).
    """
    w = grid_size[1]
    return torch.stack([ids // w, ids % w], dim=-1)  # B x N x 2


def pairwise_grid_dist2(ids_a: torch.Tensor, ids_b: torch.Tensor,
                        grid_size: Tuple[int, int]) -> torch.Tensor:
    """Squared grid distance between every patch of ``ids_a`` and every patch of ``ids_b``.

    Args:
        ids_a (Tensor): B x N patch ids.
        ids_b (Tensor): B x K patch ids.
        grid_size (tuple[int, int]): ``(h, w)``.

    Returns:
        Tensor: B x N x K squared distances (long).
    """
    a = grid_coordinates(ids_a, grid_size)  # B x N x 2
    b = grid_coordinates(ids_b, grid_size)  # B x K x 2
    return ((a[:, :, None] - b[:, None]) ** 2).sum(-1)  # B x N x K


def check_grid_ids(ids: torch.Tensor, grid_size: Tuple[int, int], name: str) -> None:
    """Raise a ValueError naming ``name`` unless ``ids`` is a B x N long tensor of valid ids."""
    if ids.dim() != 2 or ids.dtype not in (torch.int32, torch.int64):
        raise ValueError(f'{name} must be a B x N integer tensor, got {tuple(ids.shape)} '
                         f'{ids.dtype}')
    num = grid_size[0] * grid_size[1]
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= num):
        raise ValueError(f'{name} holds ids outside [0, {num}) for a {grid_size} patch grid')


def furthest_point_sampling(ids_seed: torch.Tensor, ids_cand: torch.Tensor, num: int,
                            grid_size: Tuple[int, int]) -> Tuple[torch.Tensor, torch.Tensor]:
    """Pick ``num`` candidates, each time the one furthest from the seeds and earlier picks.

    For every candidate the distance to its nearest seed-or-chosen patch is kept in a B x M
    tensor; each of the ``num`` steps takes its argmax (ties: smaller patch id) and lowers the
    distances with the new pick. PR-MIM seeds with the visible patches, so the decoded masked
    tokens spread out over the regions the encoder did not see.

    Args:
        ids_seed (Tensor): Seed patch ids (the visible ones), B x V. V may be 0.
        ids_cand (Tensor): Candidate patch ids (the masked ones), B x M, disjoint from the seeds.
        num (int): How many candidates to choose, ``0 <= num <= M``.
        grid_size (tuple[int, int]): ``(h, w)`` of the patch grid.

    Returns:
        tuple: chosen ids B x num, in the order they were picked, and the rest of the
        candidates B x (M - num), in their input order.
    """
    check_grid_ids(ids_seed, grid_size, 'ids_seed')
    check_grid_ids(ids_cand, grid_size, 'ids_cand')
    B, M = ids_cand.shape
    if not 0 <= num <= M:
        raise ValueError(f'cannot choose {num} of {M} candidate patches')
    num_patches = grid_size[0] * grid_size[1]
    far = torch.iinfo(torch.long).max // (2 * num_patches)
    if ids_seed.shape[1]:
        dist = pairwise_grid_dist2(ids_cand, ids_seed, grid_size).min(dim=2).values  # B x M
    else:  # no seed: the first pick is the smallest candidate id
        dist = torch.full((B, M), far, dtype=torch.long, device=ids_cand.device)
    # larger distance first, then smaller id: one integer key, exact
    tie = num_patches - 1 - ids_cand.long()  # B x M
    cand_xy = grid_coordinates(ids_cand, grid_size)  # B x M x 2
    picked = torch.zeros(B, M, dtype=torch.bool, device=ids_cand.device)  # B x M
    chosen = []
    for _ in range(num):
        key = torch.where(picked, torch.full_like(dist, -1), dist * num_patches + tie)
        idx = key.argmax(dim=1, keepdim=True)  # B x 1
        picked.scatter_(1, idx, torch.ones_like(idx, dtype=torch.bool))
        new_xy = torch.gather(cand_xy, 1, idx[..., None].expand(-1, -1, 2))  # B x 1 x 2
        dist = torch.minimum(dist, ((cand_xy - new_xy) ** 2).sum(-1))  # B x M
        chosen.append(idx)
    order = torch.cat(chosen, dim=1) if chosen else ids_cand.new_zeros(B, 0)  # B x num
    rest = torch.argsort(picked.to(torch.uint8), dim=1, stable=True)[:, :M - num]  # B x (M-num)
    return torch.gather(ids_cand, 1, order), torch.gather(ids_cand, 1, rest)


def nearest_patch(ids_query: torch.Tensor, ids_ref: torch.Tensor,
                  grid_size: Tuple[int, int]) -> Tuple[torch.Tensor, torch.Tensor]:
    """For every query patch, the nearest reference patch (ties: smaller patch id).

    Args:
        ids_query (Tensor): B x T patch ids.
        ids_ref (Tensor): B x K patch ids, K >= 1.
        grid_size (tuple[int, int]): ``(h, w)``.

    Returns:
        tuple: index into ``ids_ref`` of the nearest reference, B x T, and the squared
        distance to it, B x T.
    """
    if ids_ref.shape[1] < 1:
        raise ValueError('nearest_patch needs at least one reference patch')
    num_patches = grid_size[0] * grid_size[1]
    dist = pairwise_grid_dist2(ids_query, ids_ref, grid_size)  # B x T x K
    key = dist * num_patches + ids_ref.long()[:, None]  # B x T x K
    owner = key.argmin(dim=2)  # B x T
    return owner, torch.gather(dist, 2, owner[..., None])[..., 0]  # B x T, B x T
