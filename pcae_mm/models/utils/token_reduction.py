"""Progressive token reduction (PTR), shared by the PCAE teacher and PTR fine-tuning.

PCAE (https://arxiv.org/abs/2211.13184) drops, after a few chosen transformer blocks, the tokens
most similar to the mean token: they carry the redundant, low-frequency content. What is left is
a small, diverse subset whose absolute patch ids are tracked through every stage.
"""
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

SCORE_MODES = ('similarity', 'random')


def stage_locations(depth: int, num_stages: int) -> List[int]:
    """Block indices ``(depth // S) * i`` after which PCAE reduces (e.g. [0, 4, 8] for 12, 3)."""
    if not 1 <= num_stages <= depth:
        raise ValueError(f'num_stages must be in [1, depth={depth}], got {num_stages}')
    return [(depth // num_stages) * i for i in range(num_stages)]


class TokenReduction(nn.Module):
    """Keep the ``keep_ratio`` share of tokens least similar to their mean, at given blocks.

    The module holds no parameters; a backbone calls :meth:`reduce` after every block listed in
    ``locations``.

    Args:
        locations (Sequence[int]): Block indices after which tokens are reduced.
        keep_ratio (float): Share of (scored) tokens kept at each stage, in (0, 1].
        mode (str): ``'similarity'`` (PCAE: keep the least similar to the mean) or
            ``'random'`` (ablation: keep a random subset). Defaults to ``'similarity'``.
        num_fixed (int): Leading tokens that are never scored and always kept (1 for a cls
            token). Defaults to 0.
    """

    def __init__(self,
                 locations: Sequence[int],
                 keep_ratio: float,
                 mode: str = 'similarity',
                 num_fixed: int = 0) -> None:
        super().__init__()
        if mode not in SCORE_MODES:
            raise ValueError(f'TokenReduction mode must be one of {SCORE_MODES}, got {mode!r}')
        if not isinstance(keep_ratio, (int, float)) or not 0.0 < keep_ratio <= 1.0:
            raise ValueError(f'keep_ratio must be in (0, 1], got {keep_ratio!r}')
        locations = sorted(int(i) for i in locations)
        if len(set(locations)) != len(locations) or any(i < 0 for i in locations):
            raise ValueError(f'locations must be distinct non-negative block ids, got {locations}')
        self.locations = locations
        self.keep_ratio = float(keep_ratio)
        self.mode = mode
        self.num_fixed = int(num_fixed)

    def extra_repr(self) -> str:
        return (f'locations={self.locations}, keep_ratio={self.keep_ratio:.4f}, '
                f'mode={self.mode}, num_fixed={self.num_fixed}')

    def num_kept(self, n: int) -> int:
        """Tokens kept out of ``n`` scored ones at one stage (``int(n * keep_ratio)``)."""
        return int(n * self.keep_ratio + 1e-6)

    def token_counts(self, n: int, depth: Optional[int] = None) -> List[int]:
        """Scored-token count before the first stage and after each stage, e.g.
        [147, 73, 36, 18]."""
        counts = [n]
        for loc in self.locations:
            if depth is not None and loc >= depth:
                break
            counts.append(self.num_kept(counts[-1]))
        return counts

    def check(self, n: int, depth: int) -> None:
        """Raise a ValueError when the schedule is impossible for ``n`` tokens and ``depth``
        blocks."""
        bad = [i for i in self.locations if i >= depth]
        if bad:
            raise ValueError(f'token-reduction locations {bad} do not exist in a {depth}-block ViT')
        counts = self.token_counts(n, depth)
        if counts[-1] < 1:
            raise ValueError(f'keep_ratio={self.keep_ratio:.4f} at locations {self.locations} '
                             f'leaves zero tokens (counts {counts}); raise keep_ratio or use '
                             'fewer stages')

    def score(self, x: torch.Tensor) -> torch.Tensor:
        """Redundancy score of each token, higher = more informative.

        Args:
            x (Tensor): Scored tokens, B x N x C.

        Returns:
            Tensor: B x N; ``1 - cos(x_i, mean_j(x_j / |x_j|))`` in similarity mode.

        The score only ranks tokens (top-k indices carry no gradient), so it is computed
        without autograd: nothing of it is kept for the backward pass. It is computed in fp32
        even under autocast: near-equal scores of bf16 tokens would otherwise rank
        differently from the fp32 model's.
        """
        if self.mode == 'random':
            return torch.rand(x.shape[:2], device=x.device)
        with torch.no_grad():
            x = F.normalize(x.detach().float(), dim=-1)  # B x N x C
            center = F.normalize(x.mean(dim=1, keepdim=True), dim=-1)  # B x 1 x C
            return 1.0 - (x * center).sum(-1)  # B x N (elementwise: autocast keeps fp32)

    def reduce(self, x: torch.Tensor,
               ids: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Keep the most informative tokens.

        Args:
            x (Tensor): B x (F + N) x C, the first F = ``num_fixed`` tokens always kept.
            ids (Tensor): B x N absolute ids of the scored tokens.

        Returns:
            tuple: tokens B x (F + K) x C and their absolute ids B x K, K = ``num_kept(N)``,
            ordered from the most to the least informative.
        """
        fixed, tokens = x[:, :self.num_fixed], x[:, self.num_fixed:]  # B x F x C, B x N x C
        k = self.num_kept(tokens.shape[1])
        order = self.score(tokens).topk(k, dim=1).indices  # B x K
        tokens = torch.gather(tokens, 1, order.unsqueeze(-1).expand(-1, -1, tokens.shape[-1]))
        ids = torch.gather(ids, 1, order)  # B x K
        return torch.cat([fixed, tokens], dim=1), ids  # B x (F + K) x C


def build_token_reduction(cfg: Optional[dict], depth: int,
                          num_fixed: int) -> Optional[TokenReduction]:
    """Build a :class:`TokenReduction` from a config dict.

    Args:
        cfg (dict, optional): ``keep_ratio`` and either ``locations`` (block ids) or
            ``num_stages`` (PCAE placement ``(depth // S) * i``, 3 when neither is given);
            optional ``mode``. ``None`` or ``keep_ratio == 1`` disables reduction.
        depth (int): Number of transformer blocks.
        num_fixed (int): Leading tokens always kept (1 for cls).

    Returns:
        TokenReduction or None.
    """
    if not cfg:
        return None
    cfg = dict(cfg)
    unknown = set(cfg) - {'keep_ratio', 'locations', 'num_stages', 'mode'}
    if unknown:
        raise ValueError(f'unknown token_reduction keys {sorted(unknown)}; expected keep_ratio, '
                         'locations or num_stages, mode')
    if 'keep_ratio' not in cfg:
        raise ValueError('token_reduction needs keep_ratio')
    if cfg.get('keep_ratio') == 1:
        return None
    if 'locations' in cfg and 'num_stages' in cfg:
        raise ValueError('token_reduction takes locations OR num_stages, not both')
    locations = cfg.pop('locations', None)
    num_stages = cfg.pop('num_stages', None)
    if locations is None:
        locations = stage_locations(depth, num_stages or 3)
    return TokenReduction(locations, num_fixed=num_fixed, **cfg)
