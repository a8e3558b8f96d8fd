"""EMA teacher shared by PCAE and SdAE: its typed forwards (the EMA machinery is in ``ema.py``)."""
from typing import List, NamedTuple, Optional

import torch
from torch import Tensor, nn

from ..utils.masking import gather_tokens
from ..utils.token_reduction import TokenReduction
from .ema import EMAModel, canonical_name, random_vit_init_  # noqa: F401 (re-exported)

MODES = ('masked', 'folds')


class TeacherOut(NamedTuple):
    """What an :class:`EMATeacher` forward returns.

    Attributes:
        tokens (Tensor): Final-norm teacher tokens, B x K x C (no cls).
        ids (Tensor): Their absolute patch ids, B x K.
        stage_ids (list[Tensor]): Ids kept after each token-reduction stage (B x K_s each;
            empty without reduction).
    """
    tokens: Tensor
    ids: Tensor
    stage_ids: List[Tensor]


class EMATeacher(EMAModel):
    """EMA copy of the student (:class:`EMAModel`: schedule, update, step-0 init, eval mode).

    The teacher's forward (``teacher(images, ids, mode=...)``, no autograd) encodes only the
    patches at ``ids`` with the copy's public pieces (patch embedding, blocks, final norm):

    * ``mode='masked'`` (PCAE, :meth:`encode_masked`): the masked patches as one sequence
      without cls, with the progressive token reduction in ``token_reduction`` (set by PCAE);
    * ``mode='folds'`` (SdAE, :meth:`encode_folds`): ``num_folds`` disjoint folds, each its own
      sequence with its own cls, so folds never attend to each other.

    Args:
        model (nn.Module): The student network to copy (a :class:`MIMViT`).
        **kwargs: EMA settings (``momentum``, ``end_momentum``, ``schedule``, ``update_by``,
            ``interval``, ``init``), see :class:`EMAModel`.
    """

    def __init__(self, model: nn.Module, **kwargs) -> None:
        super().__init__(model, **kwargs)
        self.token_reduction: Optional[TokenReduction] = None  # set by PCAE

    @torch.no_grad()
    def forward(self, images: Tensor, ids: Tensor, mode: str = 'masked',
                num_folds: int = 1) -> TeacherOut:
        """Teacher tokens of the patches at ``ids`` (see the class docstring).

        Args:
            images (Tensor): Images, B x 3 x H x W.
            ids (Tensor): Absolute ids of the patches to encode, B x N.
            mode (str): ``'masked'`` (:meth:`encode_masked`) or ``'folds'``
                (:meth:`encode_folds`). Defaults to ``'masked'``.
            num_folds (int): Folds for ``mode='folds'``. Defaults to 1.

        Returns:
            TeacherOut: tokens B x K x C at ids B x K, and the PTR stage ids.
        """
        # FSDP mixed precision casts the root's inputs (bf16); the replicated teacher is fp32
        images = images.to(next(self.module.parameters()).dtype)
        if mode == 'masked':
            return self.encode_masked(images, ids)
        if mode == 'folds':
            return self.encode_folds(images, ids, num_folds)
        raise ValueError(f'EMATeacher mode must be one of {MODES}, got {mode!r}')

    def encode_masked(self, images: Tensor, ids: Tensor) -> TeacherOut:
        """PCAE's teacher: the patches at ``ids`` (no cls), reduced by ``token_reduction``.

        Returns:
            TeacherOut: final-norm tokens B x K x C of the survivors, their ids B x K (K = N
            without reduction), and the ids kept after each stage.
        """
        vit = self.module
        tokens = gather_tokens(vit.embed_patches(images), ids)  # B x N x C
        tokens, kept, stage_ids = vit.run_blocks(tokens, ids, self.token_reduction)  # B x K x C
        return TeacherOut(tokens, ids if kept is None else kept, stage_ids)

    def encode_folds(self, images: Tensor, ids: Tensor, num_folds: int) -> TeacherOut:
        """SdAE's teacher: ``num_folds`` disjoint folds of ``ids``, each with its own cls.

        Returns:
            TeacherOut: final-norm tokens B x N x C at ``ids`` (fold by fold, cls dropped).
        """
        B, N = ids.shape
        if N % num_folds:
            raise ValueError(f'{N} tokens cannot be split into {num_folds} equal folds')
        vit = self.module
        tokens = gather_tokens(vit.embed_patches(images), ids)  # B x N x C
        C = tokens.shape[-1]
        tokens = tokens.reshape(B * num_folds, N // num_folds, C)  # BF x N/F x C
        tokens = torch.cat([vit.cls_with_pos(B * num_folds), tokens], dim=1)  # BF x (1+N/F) x C
        tokens, _, _ = vit.run_blocks(tokens)  # BF x (1+N/F) x C
        return TeacherOut(tokens[:, 1:].reshape(B, N, C), ids, [])  # B x N x C
