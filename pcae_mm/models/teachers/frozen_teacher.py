"""Frozen pre-trained target generators (CLIP / DINO ViTs) for MR-MAE."""
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F
from mmpretrain.registry import MODELS

from ..utils.drop_path import float_drop_probs
from ..utils.masking import gather_tokens
from .frozen_loading import FrozenModule, HiddenModuleDict, read_state_dict

#: OpenAI CLIP input normalisation, in the 0-255 pixel scale of mmpretrain's preprocessors.
CLIP_MEAN = (0.48145466 * 255, 0.4578275 * 255, 0.40821073 * 255)
CLIP_STD = (0.26862954 * 255, 0.26130258 * 255, 0.27577711 * 255)
#: ImageNet normalisation (DINO, and the pre-training data preprocessor).
IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)


@MODELS.register_module()
class FrozenTeacher(FrozenModule):
    """A frozen pre-trained network that turns full images into per-patch targets.

    Built from any mmpretrain backbone config (defaults in configs: CLIP ViT-B/16 and DINO
    ViT-B/16 architectures), loaded from a local checkpoint strictly and never trained
    (:class:`FrozenModule`); it runs without autograd.

    The images arrive normalised by the data preprocessor (``input_mean`` / ``input_std``,
    ImageNet by default); the teacher un-normalises them and applies its own ``mean`` / ``std``
    (CLIP's for CLIP). Targets are the last-layer patch tokens, layer-normalised without affine.

    Args:
        backbone (dict): mmpretrain backbone config. Its last output must be patch tokens:
            ``B x C x h x w`` (e.g. ViT ``out_type='featmap'``) or ``B x (E + L) x C`` with
            ``E = backbone.num_extra_tokens`` leading extra tokens (``out_type='raw'``).
        checkpoint (str): Local path of the teacher weights.
        name (str): Teacher name (loss key ``loss_mimic_{name}``, error messages).
        prefix (str): Key prefix to strip from the checkpoint. Defaults to ''.
        mean (Sequence[float], optional): The teacher's input mean (0-255 scale). None: same
            as ``input_mean``.
        std (Sequence[float], optional): The teacher's input std (0-255 scale).
        input_mean (Sequence[float], optional): Mean the incoming images were normalised with.
            None: not normalised (0).
        input_std (Sequence[float], optional): Std the incoming images were normalised with.
            None: 1.
        embed_dims (int, optional): Target width, when the backbone has no ``embed_dims``.
        eps (float): Epsilon of the target layer norm. Defaults to 1e-6.
    """

    def __init__(self,
                 backbone: dict,
                 checkpoint: Optional[str],
                 name: str = 'teacher',
                 prefix: str = '',
                 mean: Optional[Sequence[float]] = None,
                 std: Optional[Sequence[float]] = None,
                 input_mean: Optional[Sequence[float]] = None,
                 input_std: Optional[Sequence[float]] = None,
                 embed_dims: Optional[int] = None,
                 eps: float = 1e-6,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(name, checkpoint, prefix, init_cfg=init_cfg)
        self.eps = eps
        state = read_state_dict(checkpoint, name, prefix)  # fail fast, before building
        self.backbone = float_drop_probs(MODELS.build(backbone))  # torch.compile: no breaks
        self.embed_dims = embed_dims or getattr(self.backbone, 'embed_dims', None)
        if not isinstance(self.embed_dims, int):
            raise ValueError(f"teacher '{name}': cannot tell the width of "
                             f'{type(self.backbone).__name__}; set embed_dims in its config')
        in_mean = torch.tensor(input_mean if input_mean is not None else (0., 0., 0.))
        in_std = torch.tensor(input_std if input_std is not None else (1., 1., 1.))
        t_mean = torch.tensor(mean) if mean is not None else in_mean
        t_std = torch.tensor(std) if std is not None else in_std
        # teacher input = (x * in_std + in_mean - t_mean) / t_std = x * scale + shift
        self.register_buffer('scale', (in_std / t_std).float().view(1, -1, 1, 1), False)
        self.register_buffer('shift', ((in_mean - t_mean) / t_std).float().view(1, -1, 1, 1),
                             False)
        self.load_checkpoint(state)

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Per-patch targets of full images.

        Args:
            images (Tensor): B x 3 x H x W, normalised with ``input_mean`` / ``input_std``.

        Returns:
            Tensor: B x L x C, last-layer patch tokens layer-normalised without affine.
        """
        x = images * self.scale + self.shift  # B x 3 x H x W in the teacher's normalisation
        feats = self.backbone(x)
        if isinstance(feats, (tuple, list)):
            feats = feats[-1]
        if feats.dim() == 4:
            feats = feats.flatten(2).transpose(1, 2)  # B x L x C
        elif feats.dim() == 3:
            feats = feats[:, getattr(self.backbone, 'num_extra_tokens', 0):]  # B x L x C
        else:
            raise ValueError(f"teacher '{self.name}' returns {tuple(feats.shape)}, not patch "
                             "tokens: use out_type='featmap' or 'raw' in its backbone config")
        return F.layer_norm(feats.float(), feats.shape[-1:], eps=self.eps)  # B x L x C


class FrozenTeachers(HiddenModuleDict):
    """Several named :class:`FrozenTeacher` s: MR-MAE's target generator.

    An algorithm keeps it in mmpretrain's ``target_generator`` slot. Nothing about it is trained
    or saved: its parameters have ``requires_grad=False`` (the optimizer constructor
    ``TrainableParamsOptimWrapperConstructor`` skips them, DDP does not reduce them), and as a
    :class:`HiddenModuleDict` it is left out of ``state_dict()``, ``load_state_dict`` and
    ``apply`` (each teacher keeps the weights it read from its own checkpoint file).

    Args:
        teachers (dict): name -> FrozenTeacher config.
        num_patches (int, optional): The student's patch count L; every teacher's patch grid
            must match it. None: not checked.
        **default_args: Filled into every teacher config (e.g. ``input_mean``).
    """

    def __init__(self, teachers: Dict[str, dict], num_patches: Optional[int] = None,
                 **default_args) -> None:
        if not teachers:
            raise ValueError('at least one frozen teacher is needed (model.teachers is empty)')
        super().__init__({
            name: MODELS.build(cfg, default_args=dict(default_args, name=name))
            for name, cfg in teachers.items()
        })
        self.num_patches = num_patches

    @torch.no_grad()
    def forward(self, images: torch.Tensor, ids: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Every teacher's targets gathered at ``ids``.

        Args:
            images (Tensor): Full normalised images, B x 3 x H x W.
            ids (Tensor): Patch ids to keep (the student's visible ids), B x V.

        Returns:
            dict: name -> B x V x C_t.
        """
        targets = {}
        for name, teacher in self.items():
            full = teacher(images)  # B x L x C_t
            if self.num_patches is not None and full.shape[1] != self.num_patches:
                raise ValueError(f"teacher '{name}' gives {full.shape[1]} patch tokens but the "
                                 f'student has {self.num_patches}: image size / patch size '
                                 'differ')
            targets[name] = gather_tokens(full, ids)  # B x V x C_t
        return targets

    def names(self) -> List[str]:
        return list(self.keys())
