"""One Vision Transformer for every method: MAE-masked pre-training forward, plain forward."""
from typing import List, Optional, Sequence, Tuple, Union

import torch
from mmpretrain.models import VisionTransformer
from mmpretrain.models.utils import build_2d_sincos_position_embedding
from mmpretrain.registry import MODELS

from ...utils.pretrained import init_weights_verified
from ..utils.drop_path import float_drop_probs
from ..utils.masking import check_ratio, gather_tokens, num_visible, random_masking
from ..utils.token_reduction import TokenReduction, build_token_reduction


@MODELS.register_module()
class MIMViT(VisionTransformer):
    """Vision Transformer for masked image modeling, with mmpretrain's state-dict layout.

    Every method in pcae_mm uses this one encoder. Its parameter names are exactly those of
    :class:`mmpretrain.models.VisionTransformer` (``cls_token``, ``pos_embed``,
    ``patch_embed.projection``, ``layers.{i}``, ``ln1``), so a pre-trained checkpoint loads into
    mmpretrain classifiers, mmdet and mmseg backbones with ``prefix='backbone.'``.

    Two forward paths:

    * ``forward(x)`` (``mask=True``): MAE masking, encode the visible tokens + cls.
    * ``forward(x, mask=False)``: plain ViT (fine-tuning / inference), optionally with
      progressive token reduction (PCAE Table 5) when ``token_reduction`` is set.

    Its public pieces (:meth:`embed_patches`, :meth:`cls_with_pos`, :meth:`run_blocks`) are
    what the EMA teachers (:class:`~pcae_mm.models.teachers.EMATeacher`) build their own
    forwards from.

    Args:
        arch (str | dict): ViT architecture, as in mmpretrain. Defaults to ``'b'``.
        img_size (int): Input size; must be divisible by ``patch_size``. Defaults to 224.
        patch_size (int): Defaults to 16.
        out_indices (Sequence[int] | int): Blocks whose output is returned by the plain forward.
        drop_rate (float): Dropout after the position embedding.
        drop_path_rate (float): Stochastic depth rate.
        norm_cfg (dict): Normalisation layers. Defaults to LN with eps 1e-6.
        final_norm (bool): Final LayerNorm (``ln1``). Defaults to True.
        out_type (str): Output of the plain forward: ``'raw'``, ``'cls_token'``, ``'featmap'``
            or ``'avg_featmap'``. Defaults to ``'raw'``.
        mask_ratio (float): Share of masked patches in (0, 1). Defaults to 0.75.
        fixed_pos_embed (bool): 2D sin-cos position embedding, not learned (MAE pre-training).
            Defaults to True. Set False for fine-tuning with a learned one.
        token_reduction (dict, optional): PTR for the plain forward: ``keep_ratio`` and
            ``locations`` or ``num_stages``. cls is always kept. Defaults to None.
        masking (bool): What ``forward(x)`` does without a ``mask`` argument: True for MAE
            masking (pre-training), False for the plain forward (downstream configs: mmpretrain's
            ``ImageClassifier`` calls ``backbone(x)``). Defaults to True.
        frozen_stages (int): Freeze the embeddings and this many blocks (all of them and the
            final norms when equal to the depth: linear probing), as mmpretrain. Defaults to -1.
        init_cfg (dict | list, optional): Initialisation config. With a ``Pretrained`` init_cfg
            nothing is re-initialised afterwards.
    """

    def __init__(self,
                 arch: Union[str, dict] = 'b',
                 img_size: int = 224,
                 patch_size: int = 16,
                 out_indices: Union[Sequence[int], int] = -1,
                 drop_rate: float = 0.,
                 drop_path_rate: float = 0.,
                 norm_cfg: dict = dict(type='LN', eps=1e-6),
                 final_norm: bool = True,
                 out_type: str = 'raw',
                 interpolate_mode: str = 'bicubic',
                 patch_cfg: dict = dict(),
                 layer_cfgs: Union[Sequence[dict], dict] = dict(),
                 mask_ratio: float = 0.75,
                 fixed_pos_embed: bool = True,
                 token_reduction: Optional[dict] = None,
                 frozen_stages: int = -1,
                 masking: bool = True,
                 init_cfg: Optional[Union[List[dict], dict]] = None) -> None:
        if isinstance(arch, str) and arch.lower() not in self.arch_zoo:
            raise ValueError(f'unknown ViT arch {arch!r}; choose one of '
                             f'{sorted(self.arch_zoo)} or give a dict with embed_dims, '
                             'num_layers, num_heads, feedforward_channels')
        for size in (img_size if isinstance(img_size, (tuple, list)) else (img_size, )):
            if size % patch_size:
                raise ValueError(f'image size {img_size} is not divisible by patch size '
                                 f'{patch_size}')
        check_ratio('mask_ratio', mask_ratio)
        super().__init__(
            arch=arch,
            img_size=img_size,
            patch_size=patch_size,
            out_indices=out_indices,
            drop_rate=drop_rate,
            drop_path_rate=drop_path_rate,
            norm_cfg=norm_cfg,
            final_norm=final_norm,
            out_type=out_type,
            with_cls_token=True,
            frozen_stages=frozen_stages,
            interpolate_mode=interpolate_mode,
            patch_cfg=patch_cfg,
            layer_cfgs=layer_cfgs,
            init_cfg=init_cfg)
        float_drop_probs(self)  # numpy rates break torch.compile's graph at every block
        self.mask_ratio = mask_ratio
        self.masking = masking
        self.patch_size = patch_size
        self.num_patches = self.patch_resolution[0] * self.patch_resolution[1]
        if num_visible(self.num_patches, mask_ratio) < 1:
            raise ValueError(f'mask_ratio={mask_ratio} leaves no visible patch out of '
                             f'{self.num_patches}')
        self.fixed_pos_embed = fixed_pos_embed
        if fixed_pos_embed:
            self.pos_embed.requires_grad = False
        self.token_reduction = build_token_reduction(token_reduction, self.num_layers, 1)
        if self.token_reduction is not None:
            self.token_reduction.check(self.num_patches, self.num_layers)
            if out_type == 'featmap':
                raise ValueError('token_reduction drops patch tokens, so out_type="featmap" is '
                                 'impossible; use "cls_token" or "avg_featmap"')

    @property
    def num_masked(self) -> int:
        """Masked patches per image, M = L - int(L * (1 - mask_ratio))."""
        return self.num_patches - num_visible(self.num_patches, self.mask_ratio)

    def init_weights(self) -> None:
        """MAE initialisation; a ``Pretrained`` init_cfg is loaded afterwards and verified.

        The checkpoint goes through :func:`pcae_mm.utils.pretrained.init_weights_verified`:
        it logs how many backbone tensors were loaded and raises when fewer than
        ``init_cfg.min_share`` (default 0.8) were found; nothing is re-initialised after it.
        """
        init_cfgs = self.init_cfg if isinstance(self.init_cfg, list) else [self.init_cfg]
        if any(isinstance(c, dict) and c.get('type') == 'Pretrained' for c in init_cfgs):
            init_weights_verified(self, self.init_weights)
            return
        super().init_weights()
        pos_embed = build_2d_sincos_position_embedding(
            self.patch_resolution[0], self.embed_dims, cls_token=True)  # 1 x (1+L) x C
        if self.patch_resolution[0] != self.patch_resolution[1]:
            raise ValueError('sin-cos position embedding needs a square patch grid, got '
                             f'{self.patch_resolution}')
        self.pos_embed.data.copy_(pos_embed.float())
        w = self.patch_embed.projection.weight.data
        torch.nn.init.xavier_uniform_(w.view([w.shape[0], -1]))
        torch.nn.init.normal_(self.cls_token, std=.02)

    # ------------------------------------------------------------------ helpers
    def check_input(self, x: torch.Tensor) -> None:
        """Raise a ValueError naming the problem when ``x`` is not B x C x H x W of our size."""
        if x.dim() != 4:
            raise ValueError(f'expected images B x C x H x W, got shape {tuple(x.shape)}')
        h, w = x.shape[-2:]
        if h % self.patch_size or w % self.patch_size:
            raise ValueError(f'image size {h}x{w} is not divisible by patch size '
                             f'{self.patch_size}')

    def embed_patches(self, x: torch.Tensor) -> torch.Tensor:
        """Patch embedding plus patch position embedding (no cls).

        Args:
            x (Tensor): Images, B x 3 x H x W, H and W the configured ``img_size``.

        Returns:
            Tensor: B x L x C.
        """
        self.check_input(x)
        x, hw = self.patch_embed(x)  # B x L x C
        if tuple(hw) != tuple(self.patch_resolution):
            raise ValueError(f'masked pre-training expects {self.img_size} images '
                             f'({self.patch_resolution} patches), got a {tuple(hw)} grid')
        return x + self.pos_embed[:, 1:]  # B x L x C

    def cls_with_pos(self, batch_size: int) -> torch.Tensor:
        """cls token plus its position embedding, B x 1 x C."""
        return (self.cls_token + self.pos_embed[:, :1]).expand(batch_size, -1, -1)

    def run_blocks(self,
                   x: torch.Tensor,
                   ids: Optional[torch.Tensor] = None,
                   reduction: Optional[TokenReduction] = None
                   ) -> Tuple[torch.Tensor, Optional[torch.Tensor], List[torch.Tensor]]:
        """All transformer blocks, then the final norm, reducing tokens where asked.

        Args:
            x (Tensor): B x N x C.
            ids (Tensor, optional): B x N' absolute ids of the reducible tokens.
            reduction (TokenReduction, optional): PTR applied after its ``locations``.

        Returns:
            tuple: tokens B x K x C, their ids B x K' (or None), and the ids after each stage.
        """
        stage_ids = []
        for i, layer in enumerate(self.layers):
            x = layer(x)  # B x N x C
            if reduction is not None and i in reduction.locations:
                x, ids = reduction.reduce(x, ids)  # B x K x C, B x K'
                stage_ids.append(ids)
        if self.final_norm:
            x = self.ln1(x)
        return x, ids, stage_ids

    # ------------------------------------------------------------------ forwards
    def forward(self, x: torch.Tensor, mask: Optional[bool] = None):
        """Masked encoding (pre-training) or the plain ViT forward.

        Args:
            x (Tensor): Images, B x 3 x H x W.
            mask (bool, optional): True for MAE masking; False for the plain forward; None:
                the ``masking`` set at construction.

        Returns:
            With ``mask``: ``(latent, mask_info)``, latent B x (1 + V) x C (cls first) and a
            :class:`MaskInfo`. Without: a tuple of outputs as mmpretrain's VisionTransformer.
        """
        if mask is None:
            mask = self.masking
        if not mask:
            if self.token_reduction is None:
                self.check_input(x)
                return super().forward(x)
            return self.forward_reduced(x)
        patches = self.embed_patches(x)  # B x L x C
        info = random_masking(x.shape[0], self.num_patches, self.mask_ratio, x.device)
        visible = gather_tokens(patches, info.ids_keep)  # B x V x C
        latent = torch.cat([self.cls_with_pos(x.shape[0]), visible], dim=1)  # B x (1+V) x C
        latent, _, _ = self.run_blocks(latent)  # B x (1+V) x C
        return latent, info

    def forward_reduced(self, x: torch.Tensor) -> Tuple[torch.Tensor]:
        """Plain forward with progressive token reduction (cls always kept).

        Args:
            x (Tensor): B x 3 x H x W.

        Returns:
            tuple[Tensor]: one output, formatted by ``out_type`` ('cls_token': B x C,
            'avg_featmap': B x C over the kept patch tokens, 'raw': B x (1 + K) x C).
        """
        patches = self.embed_patches(x)  # B x L x C
        ids = torch.arange(self.num_patches, device=x.device).expand(x.shape[0], -1)  # B x L
        tokens = torch.cat([self.cls_with_pos(x.shape[0]), patches], dim=1)  # B x (1+L) x C
        tokens = self.drop_after_pos(tokens)
        tokens, _, _ = self.run_blocks(tokens, ids, self.token_reduction)  # B x (1+K) x C
        if self.out_type == 'raw':
            return (tokens, )
        if self.out_type == 'cls_token':
            return (tokens[:, 0], )
        return (self.ln2(tokens[:, 1:].mean(dim=1)), )  # avg_featmap
