"""Frozen pre-trained target generators (CLIP / DINO ViTs) for MR-MAE."""
import os.path as osp
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmpretrain.registry import MODELS
from torch import nn

from ..utils.masking import gather_tokens

#: OpenAI CLIP input normalisation, in the 0-255 pixel scale of mmpretrain's preprocessors.
CLIP_MEAN = (0.48145466 * 255, 0.4578275 * 255, 0.40821073 * 255)
CLIP_STD = (0.26862954 * 255, 0.26130258 * 255, 0.27577711 * 255)
#: ImageNet normalisation (DINO, and the pre-training data preprocessor).
IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)


def read_state_dict(path: Optional[str], name: str, prefix: str = '') -> Dict[str, torch.Tensor]:
    """Read a teacher's weights from a local checkpoint, never from the network.

    Args:
        path (str, optional): Local file: a plain state dict or a checkpoint holding one under
            ``'state_dict'`` or ``'model'``.
        name (str): Teacher name, for error messages.
        prefix (str): Keep only keys starting with it, stripped (e.g. ``'backbone.'`` for an
            mmpretrain classifier checkpoint). Defaults to ''.

    Returns:
        dict: parameter name -> tensor.
    """
    hint = (f"set model.teachers.{name}.checkpoint to a local file. Teachers are never "
            'downloaded at run time: download the pre-trained weights yourself and convert '
            "them to mmpretrain's VisionTransformer layout (configs/mr_mae/README.md)")
    if not path:
        raise FileNotFoundError(f"teacher '{name}' has no checkpoint: {hint}")
    if '://' in str(path):
        raise ValueError(f"teacher '{name}' checkpoint {path!r} is a URL: {hint}")
    if not osp.isfile(path):
        raise FileNotFoundError(f"teacher '{name}' checkpoint {path!r} does not exist: {hint}")
    try:
        ckpt = torch.load(path, map_location='cpu')
    except Exception as e:  # noqa: BLE001 - re-raised with the teacher's name
        raise ValueError(f"teacher '{name}' checkpoint {path!r} cannot be read: {e}") from e
    state = ckpt
    if isinstance(ckpt, dict):
        for key in ('state_dict', 'model'):
            if isinstance(ckpt.get(key), dict):
                state = ckpt[key]
                break
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise ValueError(f"teacher '{name}' checkpoint {path!r} holds no state dict of tensors")
    if prefix:
        stripped = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        if not stripped:
            raise KeyError(f"teacher '{name}' checkpoint {path!r} has no key starting with "
                           f'prefix {prefix!r} (first keys: {sorted(state)[:3]}); fix '
                           f'model.teachers.{name}.prefix')
        state = stripped
    return state


def _guess_prefix(expected: Sequence[str], found: Sequence[str]) -> Optional[str]:
    """The prefix that would make the checkpoint keys match, if there is an obvious one."""
    for key in sorted(expected, key=len, reverse=True)[:1]:
        for other in found:
            if other.endswith('.' + key) or other == key:
                return other[:len(other) - len(key)]
    return None


def check_state_dict(module: nn.Module, state: Dict[str, torch.Tensor], name: str, path: str,
                     prefix: str) -> None:
    """Raise a KeyError (keys) or ValueError (shapes) unless ``state`` fits ``module``."""
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if not missing and not unexpected:
        # pos_embed may differ in length: the ViT's load hook resizes it to the model's grid
        wrong = [f'{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(v.shape)}'
                 for k, v in expected.items()
                 if state[k].shape != v.shape and not k.endswith('pos_embed')]
        if wrong:
            raise ValueError(f"teacher '{name}' checkpoint {path!r} does not fit its "
                             f'architecture ({type(module).__name__}): {len(wrong)} tensors '
                             f'have other shapes, e.g. {wrong[:2]}. Check the teacher width '
                             '(arch) in its backbone config')
        return
    msg = (f"teacher '{name}' checkpoint {path!r} does not match its architecture "
           f'({type(module).__name__}): {len(missing)} missing keys {missing[:4]}, '
           f'{len(unexpected)} unexpected keys {unexpected[:4]}. Check the teacher backbone '
           'config (arch, pre_norm, final_norm, ...)')
    guess = _guess_prefix(list(expected), list(state))
    if guess:
        msg += f" and its prefix: the keys would match with prefix={prefix + guess!r}"
    raise KeyError(msg)


@MODELS.register_module()
class FrozenTeacher(BaseModule):
    """A frozen pre-trained network that turns full images into per-patch targets.

    Built from any mmpretrain backbone config (defaults in configs: CLIP ViT-B/16 and DINO
    ViT-B/16 architectures) and loaded from a local checkpoint, strictly: a missing file, a URL,
    missing or unexpected keys or mismatching shapes raise an error naming the teacher. It never
    trains: every parameter has ``requires_grad=False``, it stays in eval mode whatever
    ``train()`` asks, and runs without autograd.

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
        super().__init__(init_cfg=init_cfg)
        self.name = name
        self.checkpoint = checkpoint
        self.prefix = prefix
        self.eps = eps
        state = read_state_dict(checkpoint, name, prefix)  # fail fast, before building
        self.backbone = MODELS.build(backbone)
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

    def load_checkpoint(self, state: Optional[Dict[str, torch.Tensor]] = None) -> None:
        """(Re)load the weights (from ``checkpoint`` unless given) and freeze them."""
        if state is None:
            state = read_state_dict(self.checkpoint, self.name, self.prefix)
        check_state_dict(self.backbone, state, self.name, self.checkpoint, self.prefix)
        try:
            self.backbone.load_state_dict(state, strict=True)
        except RuntimeError as e:  # shape mismatches
            raise ValueError(f"teacher '{self.name}' checkpoint {self.checkpoint!r} does not "
                             f'fit its architecture: {e}') from None
        self.requires_grad_(False)
        self.eval()

    def init_weights(self) -> None:
        """Reload the checkpoint: an enclosing model's ``init_cfg`` must not overwrite it."""
        self.load_checkpoint()

    def train(self, mode: bool = True) -> 'FrozenTeacher':
        """Stay in eval mode (no dropout, no drop path) whatever the runner asks."""
        return super().train(False)

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


class FrozenTeachers(nn.ModuleDict):
    """Several named :class:`FrozenTeacher` s, queried together at the visible ids.

    Args:
        teachers (dict): name -> FrozenTeacher config.
        **default_args: Filled into every teacher config (e.g. ``input_mean``).
    """

    def __init__(self, teachers: Dict[str, dict], **default_args) -> None:
        if not teachers:
            raise ValueError('at least one frozen teacher is needed (model.teachers is empty)')
        super().__init__({
            name: MODELS.build(cfg, default_args=dict(default_args, name=name))
            for name, cfg in teachers.items()
        })

    def forward(self, images: torch.Tensor, ids: torch.Tensor,
                num_patches: int) -> Dict[str, torch.Tensor]:
        """Every teacher's targets gathered at ``ids``.

        Args:
            images (Tensor): Full normalised images, B x 3 x H x W.
            ids (Tensor): Patch ids to keep (the student's visible ids), B x V.
            num_patches (int): The student's patch count L; the teacher grids must match.

        Returns:
            dict: name -> B x V x C_t.
        """
        targets = {}
        for name, teacher in self.items():
            full = teacher(images)  # B x L x C_t
            if full.shape[1] != num_patches:
                raise ValueError(f"teacher '{name}' gives {full.shape[1]} patch tokens but the "
                                 f'student has {num_patches}: image size / patch size differ')
            targets[name] = gather_tokens(full, ids)  # B x V x C_t
        return targets

    def names(self) -> List[str]:
        return list(self.keys())
