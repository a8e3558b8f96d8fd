"""EMA teachers of PCAE and SdAE: their typed forwards (the EMA machinery is in ``ema.py``)."""
from typing import List, NamedTuple, Optional

import torch
from torch import Tensor, nn

from ..utils.masking import gather_tokens
from ..utils.token_reduction import TokenReduction
from .ema import EMAModel


class TeacherOut(NamedTuple):
    """What an EMA teacher's forward returns (the teacher family's record in a ``MIMOutput``).

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
    """EMA copy of the student (:class:`EMAModel`: schedule, update, step-0 init, eval mode)
    that encodes only chosen patches, without autograd.

    The forwards are the subclasses': :class:`MaskedEMATeacher` (PCAE) and
    :class:`FoldedEMATeacher` (SdAE). Both are built from the copy's public pieces (patch
    embedding, blocks, final norm) and are called through ``teacher(images, ids)``.

    Args:
        model (nn.Module): The student network to copy (a :class:`MIMViT`).
        **kwargs: EMA settings (``momentum``, ``end_momentum``, ``schedule``, ``update_by``,
            ``interval``, ``init``), see :class:`EMAModel`.
    """

    def embed(self, images: Tensor, ids: Tensor) -> Tensor:
        """Patch embeddings (+ position) of the patches at ``ids``: B x N x C."""
        # FSDP mixed precision casts the root's inputs (bf16); the replicated teacher is fp32
        images = images.to(next(self.module.parameters()).dtype)
        return gather_tokens(self.module.embed_patches(images), ids)  # B x N x C


class MaskedEMATeacher(EMATeacher):
    """PCAE's teacher: the patches at ``ids`` as one sequence without cls, with progressive
    token reduction (147 -> 73 -> 36 -> 18 for ViT-B/16 at mask 0.75, 3 stages keeping 0.5).

    Args:
        model (nn.Module): The student network to copy (a :class:`MIMViT`).
        token_reduction (TokenReduction, optional): The PTR applied after its blocks
            (``num_fixed=0``: no cls). None encodes every patch at ``ids``.
        **kwargs: EMA settings, see :class:`EMAModel`.
    """

    def __init__(self, model: nn.Module, token_reduction: Optional[TokenReduction] = None,
                 **kwargs) -> None:
        super().__init__(model, **kwargs)
        self.token_reduction = token_reduction

    @torch.no_grad()
    def forward(self, images: Tensor, ids: Tensor) -> TeacherOut:
        """Teacher tokens of the survivors of the patches at ``ids``.

        Args:
            images (Tensor): Images, B x 3 x H x W.
            ids (Tensor): Absolute ids of the patches to encode, B x N.

        Returns:
            TeacherOut: final-norm tokens B x K x C of the survivors, their ids B x K (K = N
            without reduction), and the ids kept after each stage.
        """
        tokens = self.embed(images, ids)  # B x N x C
        tokens, kept, stage_ids = self.module.run_blocks(
            tokens, ids, self.token_reduction)  # B x K x C, B x K
        return TeacherOut(tokens, ids if kept is None else kept, stage_ids)


class FoldedEMATeacher(EMATeacher):
    """SdAE's teacher: ``num_folds`` disjoint folds of the patches at ``ids``, each its own
    sequence with its own cls, so folds never attend to each other (ViT-B/16, mask 0.75:
    3 folds of 49). Fold ``f`` is ``ids[:, f*N/F:(f+1)*N/F]``.

    Args:
        model (nn.Module): The student network to copy (a :class:`MIMViT`).
        num_folds (int): Folds F; must divide the number of ids. Defaults to 1.
        **kwargs: EMA settings, see :class:`EMAModel`.
    """

    def __init__(self, model: nn.Module, num_folds: int = 1, **kwargs) -> None:
        super().__init__(model, **kwargs)
        self.num_folds = num_folds

    @torch.no_grad()
    def forward(self, images: Tensor, ids: Tensor) -> TeacherOut:
        """Teacher tokens of the patches at ``ids``, encoded fold by fold.

        Args:
            images (Tensor): Images, B x 3 x H x W.
            ids (Tensor): Absolute ids of the patches to encode, B x N.

        Returns:
            TeacherOut: final-norm tokens B x N x C at ``ids`` (cls dropped), no stages.
        """
        B, N = ids.shape
        F = self.num_folds
        if N % F:
            raise ValueError(f'{N} tokens cannot be split into {F} equal folds')
        tokens = self.embed(images, ids)  # B x N x C
        C = tokens.shape[-1]
        tokens = tokens.reshape(B * F, N // F, C)  # BF x N/F x C
        tokens = torch.cat([self.module.cls_with_pos(B * F), tokens], dim=1)  # BF x (1+N/F) x C
        tokens, _, _ = self.module.run_blocks(tokens)  # BF x (1+N/F) x C
        return TeacherOut(tokens[:, 1:].reshape(B, N, C), ids, [])  # B x N x C
