"""PR-MIM's strategy: decode a chosen subset of the masked tokens, supervise the rest cheaply."""
from typing import NamedTuple, Optional, Tuple

import torch
from mmengine.model import BaseModule
from mmpretrain.registry import MODELS
from torch import nn

from .furthest_sampling import furthest_point_sampling, nearest_patch
from .masking import check_ratio, gather_tokens

SAMPLINGS = ('furthest', 'random')


class Selection(NamedTuple):
    """Which masked patches the decoder sees, and where the thrown ones get their prediction.

    Attributes:
        ids_decode (Tensor): Masked patches the decoder reconstructs, B x K.
        ids_thrown (Tensor): Masked patches left out of the decoder, B x T, sorted from the
            nearest to the furthest from a decoded patch (ties: smaller id).
        owner (Tensor): Index into ``ids_decode`` of each thrown patch's nearest decoded
            patch, B x T.
    """
    ids_decode: torch.Tensor
    ids_thrown: torch.Tensor
    owner: torch.Tensor


@MODELS.register_module()
class PartialReconstruction(BaseModule):
    """Partial + progressive reconstruction (PR-MIM) as a part any MIM algorithm can take.

    **Partial reconstruction.** Of the ``L`` patches, ``T = int(L * throw_ratio)`` masked
    patches are thrown out of the decoder, which then runs on ``1 + V + K`` tokens with
    ``K = M - T`` (ViT-B/16, mask 0.75, throw 0.5: 1 + 49 + 49 = 99 instead of MAE's 197).
    ``sampling='furthest'`` keeps the K masked patches chosen by furthest-point sampling on the
    grid seeded by the visible patches; ``'random'`` (ablation) keeps a uniform random subset
    (the first K of the shuffled ``ids_masked``).

    **Progressive reconstruction** (pcae_mm's design, the paper leaves it open). Every thrown
    patch belongs to its nearest decoded patch. A light linear head predicts its target from
    the owner's final decoder state plus a learned embedding of the grid offset from owner to
    thrown patch: ``pred = W (h_owner + e[dy, dx]) + b`` (no attention, ``T x D x P`` MACs).
    Only the share ``s`` of thrown patches nearest to their owner is supervised; ``s`` grows
    linearly from ``start_share`` to ``end_share`` while training progress (iteration /
    max_iters, set by :class:`~pcae_mm.engine.hooks.ProgressiveReconstructionHook`) goes from
    ``start_progress`` to ``end_progress``. With ``s = 1`` every masked patch has a loss term.

    Args:
        throw_ratio (float): Share of ALL patches left out of the decoder, in (0, mask_ratio).
            Defaults to 0.5.
        sampling (str): ``'furthest'`` or ``'random'``. Defaults to ``'furthest'``.
        progressive (dict, optional): ``start_share`` (0.), ``end_share`` (1.),
            ``start_progress`` (0.), ``end_progress`` (0.5) and ``loss_weight`` (1.). ``None``
            disables it (thrown patches get no loss). Defaults to ``dict()``.
        in_dims (int): Decoder width D (the algorithm fills it in from its neck).
        out_dims (int): Prediction width P (likewise).
        grid_size (int | tuple[int, int]): Patch grid ``(h, w)`` (likewise).
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 throw_ratio: float = 0.5,
                 sampling: str = 'furthest',
                 progressive: Optional[dict] = dict(),
                 in_dims: int = 512,
                 out_dims: int = 768,
                 grid_size: Tuple[int, int] = (14, 14),
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        check_ratio('throw_ratio', throw_ratio)
        if sampling not in SAMPLINGS:
            raise ValueError(f'sampling must be one of {SAMPLINGS}, got {sampling!r}')
        self.throw_ratio = throw_ratio
        self.sampling = sampling
        self.grid_size = (grid_size, grid_size) if isinstance(grid_size, int) else tuple(grid_size)
        self.num_patches = self.grid_size[0] * self.grid_size[1]
        self.num_thrown = int(self.num_patches * throw_ratio)
        self.progressive = None if progressive is None else self._check_schedule(progressive)
        self.progress: Optional[float] = None
        if self.progressive is not None:
            h, w = self.grid_size
            self.offset_embed = nn.Embedding((2 * h - 1) * (2 * w - 1), in_dims)
            self.proj = nn.Linear(in_dims, out_dims)

    @staticmethod
    def _check_schedule(cfg: dict) -> dict:
        schedule = dict(start_share=0., end_share=1., start_progress=0., end_progress=0.5,
                        loss_weight=1.)
        unknown = set(cfg) - set(schedule)
        if unknown:
            raise ValueError(f'unknown progressive keys {sorted(unknown)}; expected '
                             f'{sorted(schedule)}')
        schedule.update(cfg)
        for key in ('start_share', 'end_share', 'start_progress', 'end_progress'):
            if not 0. <= schedule[key] <= 1.:
                raise ValueError(f'progressive {key} must be in [0, 1], got {schedule[key]}')
        if schedule['end_progress'] < schedule['start_progress']:
            raise ValueError('progressive end_progress must not precede start_progress')
        if schedule['loss_weight'] < 0:
            raise ValueError(f"progressive loss_weight must be >= 0, got {schedule['loss_weight']}")
        return schedule

    def init_weights(self) -> None:
        super().init_weights()
        if self.progressive is not None:
            nn.init.normal_(self.offset_embed.weight, std=.02)

    def check(self, num_patches: int, num_masked: int) -> None:
        """Raise a ValueError when the thrown share does not fit the model's masking.

        Args:
            num_patches (int): L of the backbone.
            num_masked (int): M, masked patches per image.
        """
        if num_patches != self.num_patches:
            raise ValueError(f'partial reconstruction grid {self.grid_size} has '
                             f'{self.num_patches} patches, the backbone {num_patches}')
        if self.num_thrown < 1:
            raise ValueError(f'throw_ratio={self.throw_ratio} throws no patch of {num_patches}; '
                             'drop partial_reconstruction to decode every masked patch')
        if self.num_thrown >= num_masked:
            raise ValueError(
                f'throw_ratio={self.throw_ratio} throws {self.num_thrown} of {num_patches} '
                f'patches but only {num_masked} are masked: '
                + ('it leaves no decoded token' if self.num_thrown == num_masked else
                   'it exceeds the masked share') + f'; use throw_ratio < '
                f'{num_masked / num_patches:.4g} (the mask ratio)')

    # ------------------------------------------------------------------ selection
    def select(self, ids_keep: torch.Tensor, ids_masked: torch.Tensor) -> Selection:
        """Split the masked patches into decoded and thrown ones.

        Args:
            ids_keep (Tensor): Visible patch ids, B x V.
            ids_masked (Tensor): Masked patch ids, B x M (random order).

        Returns:
            Selection: ``ids_decode`` B x K, ``ids_thrown`` B x T (nearest first), ``owner``
            B x T.
        """
        M = ids_masked.shape[1]
        self.check(self.num_patches, M)
        K = M - self.num_thrown
        if self.sampling == 'furthest':
            ids_decode, ids_thrown = furthest_point_sampling(
                ids_keep, ids_masked, K, self.grid_size)  # B x K, B x T
        else:  # ids_masked is a random permutation: its first K are a uniform random subset
            ids_decode, ids_thrown = ids_masked[:, :K], ids_masked[:, K:]  # B x K, B x T
        owner, dist2 = nearest_patch(ids_thrown, ids_decode, self.grid_size)  # B x T, B x T
        order = torch.argsort(dist2 * self.num_patches + ids_thrown, dim=1)  # B x T
        return Selection(ids_decode, torch.gather(ids_thrown, 1, order),
                         torch.gather(owner, 1, order))

    # ------------------------------------------------------------------ progressive path
    def set_progress(self, progress: float) -> None:
        """Training progress in [0, 1] (iteration / max_iters)."""
        self.progress = min(max(float(progress), 0.), 1.)

    def share(self) -> float:
        """Share of thrown patches supervised at the current progress."""
        p = self.progressive
        if p is None:
            return 0.
        if p['start_share'] == p['end_share']:
            return p['end_share']
        if self.progress is None:
            raise RuntimeError(
                'the progressive-reconstruction share grows with training progress but nothing '
                "sets it: add custom_hooks=[dict(type='ProgressiveReconstructionHook')] to the "
                'config, or call set_progress()')
        span = p['end_progress'] - p['start_progress']
        t = 1. if span == 0 else (self.progress - p['start_progress']) / span
        t = min(max(t, 0.), 1.)
        return p['start_share'] + (p['end_share'] - p['start_share']) * t

    def num_supervised(self) -> int:
        """Thrown patches per image that get a progressive loss term now."""
        return int(round(self.share() * self.num_thrown))

    def predict_thrown(self, hidden: torch.Tensor,
                       selection: Selection) -> Tuple[torch.Tensor, torch.Tensor]:
        """Predict the thrown patches nearest to a decoded one with the light linear head.

        Args:
            hidden (Tensor): Final (normalised) decoder states of the decoded tokens, B x K x D.
            selection (Selection): From :meth:`select`.

        Returns:
            tuple: predictions B x S x P for the first ``S = num_supervised()`` thrown patches,
            and their ids B x S.
        """
        if self.progressive is None:
            raise RuntimeError('progressive reconstruction is disabled (progressive=None)')
        S = self.num_supervised()
        ids = selection.ids_thrown[:, :S]  # B x S
        owner = selection.owner[:, :S]  # B x S
        owner_ids = torch.gather(selection.ids_decode, 1, owner)  # B x S
        h, w = self.grid_size
        dy = ids // w - owner_ids // w + h - 1  # B x S, in [0, 2h-2]
        dx = ids % w - owner_ids % w + w - 1  # B x S, in [0, 2w-2]
        x = gather_tokens(hidden, owner) + self.offset_embed(dy * (2 * w - 1) + dx)  # B x S x D
        return self.proj(x), ids  # B x S x P, B x S
