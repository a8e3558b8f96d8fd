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
    """Check that ``ids`` is a B x N integer tensor of ids on the ``h x w`` grid.

    Shape and dtype are host metadata: a wrong one raises a ValueError naming ``name``. The
    id range is checked on the device (``torch._assert_async``), so the check never makes the
    host wait for a GPU; ids out of range raise a RuntimeError (at once on a CPU, at the next
    synchronisation on a GPU) whose message names ``name``.
    """
    if ids.dim() != 2 or ids.dtype not in (torch.int32, torch.int64):
        raise ValueError(f'{name} must be a B x N integer tensor, got {tuple(ids.shape)} '
                         f'{ids.dtype}')
    num = grid_size[0] * grid_size[1]
    if ids.numel():
        in_range = ((ids >= 0) & (ids < num)).all()
        torch._assert_async(in_range, f'{name} holds ids outside [0, {num}) for a '
                            f'{tuple(grid_size)} patch grid')


def furthest_point_sampling(ids_seed: torch.Tensor, ids_cand: torch.Tensor, num: int,
                            grid_size: Tuple[int, int]) -> Tuple[torch.Tensor, torch.Tensor]:
    """Pick ``num`` candidates, each time the one furthest from the seeds and earlier picks.

    For every candidate the distance to its nearest seed-or-chosen patch is kept in a B x M
    tensor; each of the ``num`` steps takes its argmax (ties: smaller patch id) and lowers the
    distances with the new pick's row of a precomputed B x M x M candidate-distance table
    (three kernel launches per pick, no host-device synchronisation). PR-MIM seeds with the
    visible patches, so the decoded masked tokens spread out over the regions the encoder did
    not see.

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
    h, w = grid_size
    # One integer key per candidate: larger distance first, then smaller id. Keys are exact;
    # int32 when they fit (grids up to 181 x 181), to halve the B x M x M table below.
    far = (h - 1)**2 + (w - 1)**2 + 1  # more than any squared grid distance
    dtype = torch.int32 if (far + 1) * num_patches < 2**31 else torch.long
    tie = (num_patches - 1 - ids_cand.long()).to(dtype)  # B x M
    if ids_seed.shape[1]:
        dist = pairwise_grid_dist2(ids_cand, ids_seed, grid_size).min(dim=2).values  # B x M
        key = dist.to(dtype) * num_patches + tie  # B x M
    else:  # no seed: every candidate equally far, the first pick is the smallest id
        key = tie + far * num_patches
    # pair[b, i, j]: key candidate j gets once candidate i is picked; -1 on the diagonal marks
    # the picked candidate itself, so that it can never win an argmax again
    pair = pairwise_grid_dist2(ids_cand, ids_cand, grid_size).to(dtype) * num_patches \
        + tie[:, None, :]  # B x M x M
    pair.diagonal(dim1=1, dim2=2).fill_(-1)
    # 3 kernels per pick and no host sync: argmax, gather the picked row, elementwise minimum
    chosen = []
    for _ in range(num):
        idx = key.argmax(dim=1, keepdim=True)  # B x 1
        row = torch.gather(pair, 1, idx[:, :, None].expand(-1, -1, M))[:, 0]  # B x M
        key = torch.minimum(key, row)  # B x M, -1 at the picks
        chosen.append(idx)
    order = torch.cat(chosen, dim=1) if chosen else ids_cand.new_zeros(B, 0)  # B x num
    picked = (key < 0).to(torch.uint8)  # B x M
    rest = torch.argsort(picked, dim=1, stable=True)[:, :M - num]  # B x (M-num), input order
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
