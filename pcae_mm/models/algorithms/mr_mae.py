"""MR-MAE and MR-MCMAE: mimic frozen teachers on visible tokens, reconstruct masked pixels."""
import warnings
from typing import Dict, List, NamedTuple, Optional, Tuple, Union

import torch
from mmpretrain.registry import MODELS
from torch import nn

from ..teachers.frozen_teacher import FrozenTeachers
from ..utils.masking import MaskInfo
from ..utils.targets import patch_pixels
from .base import MIMOutput, MIMSelfSupervisor


class MimicOut(NamedTuple):
    """MR-MAE's record in a ``MIMOutput``: per teacher, its mimic head's prediction and the
    frozen teacher's target, both at the visible ids ``ids_keep``.

    Attributes:
        pred (dict): Teacher name -> mimic-head prediction, B x V x C_t.
        target (dict): Teacher name -> frozen-teacher features, B x V x C_t.
    """
    pred: Dict[str, torch.Tensor]
    target: Dict[str, torch.Tensor]


def preprocessor_normalization(
        data_preprocessor: nn.Module) -> Tuple[Optional[List[float]], Optional[List[float]]]:
    """Mean and std (0-255 scale) the data preprocessor normalises with, or ``(None, None)``."""
    if not getattr(data_preprocessor, '_enable_normalize', False):
        return None, None
    if not getattr(data_preprocessor, '_channel_conversion', True):
        warnings.warn('the data preprocessor does not convert BGR to RGB (to_rgb=False), but '
                      'the frozen teachers expect RGB images')
    return (data_preprocessor.mean.flatten().tolist(), data_preprocessor.std.flatten().tolist())


@MODELS.register_module()
class MRMAE(MIMSelfSupervisor):
    """MR-MAE: Mimic before Reconstruct (`paper <https://arxiv.org/abs/2303.05475>`_).

    The MAE encoder sees the visible patches. Its visible tokens mimic, through one linear head
    per teacher, the layer-normalised last-layer features of frozen pre-trained teachers (CLIP
    and/or DINO ViT-B/16) computed on the full image and gathered at the visible ids; the
    decoder reconstructs the normalised pixels of the masked patches. Disjoint token sets keep
    the two objectives apart::

        L = loss_pix + sum_t w_t * loss_mimic_t

    ``w_t`` is ``mimic_heads[t].loss_weight``; every term is logged under its own key
    (``loss_pix``, ``loss_mimic_clip``, ...).

    The teachers are mmpretrain's ``target_generator`` (:class:`FrozenTeachers`): frozen,
    left out of checkpoints and of the model's weight initialisation. A saved checkpoint holds
    only what training changes (backbone, decoder, mimic heads); building the model, also to
    resume, reloads every teacher from its local checkpoint file.

    Args:
        backbone (dict): :class:`MIMViT` (or :class:`MCMAEViT` for :class:`MRMCMAE`).
        neck (dict): :class:`PartialDecoder` with ``out_dims = patch_size**2 * 3``.
        head (dict): :class:`PartialPixelHead` (norm-pix MSE on the masked patches).
        teachers (dict): name -> :class:`FrozenTeacher` config. Their ``input_mean`` /
            ``input_std`` default to the data preprocessor's normalisation.
        mimic_heads (dict): name -> :class:`MimicHead` config, one per teacher.
            ``in_channels`` / ``out_channels`` default to the student / teacher widths.
    """

    def __init__(self,
                 backbone: dict,
                 neck: dict,
                 head: dict,
                 teachers: Dict[str, dict],
                 mimic_heads: Dict[str, dict],
                 pretrained: Optional[str] = None,
                 data_preprocessor: Optional[Union[dict, nn.Module]] = None,
                 init_cfg: Optional[Union[List[dict], dict]] = None) -> None:
        super().__init__(
            backbone=backbone,
            neck=neck,
            head=head,
            pretrained=pretrained,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg)
        teachers, mimic_heads = dict(teachers or {}), dict(mimic_heads or {})
        if set(teachers) != set(mimic_heads):
            raise ValueError(f'every teacher needs exactly one mimic head: teachers '
                             f'{sorted(teachers)}, mimic_heads {sorted(mimic_heads)}')
        mean, std = preprocessor_normalization(self.data_preprocessor)
        frozen = FrozenTeachers(teachers, num_patches=self.backbone.num_patches,
                                input_mean=mean, input_std=std)
        width = self.backbone.embed_dims
        self.mimic_heads = nn.ModuleDict()
        for name, teacher in frozen.items():
            mimic = MODELS.build(
                mimic_heads[name],
                default_args=dict(in_channels=width, out_channels=teacher.embed_dims))
            if mimic.in_channels != width:
                raise ValueError(f"mimic head '{name}' takes {mimic.in_channels} channels but "
                                 f'the student backbone is {width} wide')
            if mimic.out_channels != teacher.embed_dims:
                raise ValueError(f"mimic head '{name}' outputs {mimic.out_channels} channels "
                                 f"but teacher '{name}' is {teacher.embed_dims} wide")
            self.mimic_heads[name] = mimic
        self.target_generator = frozen

    def fsdp_ignored_modules(self) -> List[nn.Module]:
        """Modules FSDP must keep whole on every rank (the frozen teachers; see
        :class:`~pcae_mm.engine.fsdp.TeacherReplicatedFSDP`)."""
        return [self.target_generator]

    def encode(self, inputs: torch.Tensor
               ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, MaskInfo]:
        """Encoder on the visible patches, decoder on every masked one.

        Returns:
            tuple: encoder output B x (1 + V) x C, its visible patch tokens B x V x C,
            predictions B x M x (p*p*3) at ``ids_masked``, and the mask.
        """
        latent, info = self.backbone(inputs)  # B x (1+V) x C, MaskInfo
        pred = self.neck(latent, info.ids_keep, info.ids_masked)  # B x M x ppC
        return latent, latent[:, 1:], pred, info

    def forward_mim(self, inputs: torch.Tensor) -> MIMOutput:
        """Pixels of the masked patches and every teacher's view of the visible ones.

        Args:
            inputs (Tensor): Normalised images, B x 3 x H x W.

        Returns:
            MIMOutput: ``pred`` / raw-pixel ``target`` B x M x (p*p*3) at ``ids_masked``;
            extras: the :class:`MimicOut` (name -> B x V x C_t at ``ids_keep``).
        """
        latent, visible, pred, info = self.encode(inputs)  # visible: B x V x C
        target = patch_pixels(inputs, info.ids_masked, self.backbone.patch_size)  # B x M x ppC
        mimic_target = self.target_generator(inputs, info.ids_keep)  # name -> B x V x C_t
        mimic = {n: head(visible) for n, head in self.mimic_heads.items()}  # name -> B x V x C_t
        return MIMOutput(latent=latent, mask=info.mask, ids_keep=info.ids_keep,
                         ids_masked=info.ids_masked, ids_pred=info.ids_masked, pred=pred,
                         target=target, pixels=True, extras=(MimicOut(mimic, mimic_target), ))

    def loss(self, inputs: torch.Tensor, data_samples: List) -> Dict[str, torch.Tensor]:
        """Pixel loss on masked patches plus one mimic loss per teacher on visible ones.

        Args:
            inputs (Tensor): Normalised images, B x 3 x H x W.
            data_samples (list): Unused.

        Returns:
            dict: ``loss_pix`` and ``loss_mimic_{name}`` (already weighted) per teacher.
        """
        out = self.forward_mim(inputs)
        mimic = out.extra(MimicOut)
        losses = dict(loss_pix=self.head.loss(out.pred, out.target))
        for name, head in self.mimic_heads.items():
            losses[f'loss_mimic_{name}'] = head.loss(mimic.pred[name], mimic.target[name])
        return losses


@MODELS.register_module()
class MRMCMAE(MRMAE):
    """MR-MCMAE: MR-MAE on the ConvMAE-style hybrid encoder :class:`MCMAEViT`.

    The masked-convolution stages' maps reach the decoder as multi-scale skips
    (:class:`MultiScaleSkipDecoder`); the mimic heads read the encoder's visible stride-16
    tokens. Arguments as :class:`MRMAE`.
    """

    def encode(self, inputs: torch.Tensor
               ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, MaskInfo]:
        """Hybrid encoder on the visible patches, skip decoder on every masked one.

        Returns:
            tuple: as :meth:`MRMAE.encode`; the encoder output has no cls (B x V x C), so
            it is also the visible tokens.
        """
        latent, info, skips = self.backbone(inputs, mask=True)  # B x V x C, 2 maps
        pred = self.neck(latent, info.ids_keep, info.ids_masked, skips)  # B x M x ppC
        return latent, latent, pred, info
