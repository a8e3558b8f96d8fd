"""How MR-MAE's frozen teachers are loaded (strictly, from local files), kept out of checkpoints."""
import os.path as osp
from typing import Dict, Optional, Sequence

import torch
from mmengine.model import BaseModule
from torch import nn


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
        ckpt = torch.load(path, map_location='cpu', weights_only=True)  # never unpickle code
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


class FrozenModule(BaseModule):
    """A module whose ``backbone`` is read from a local checkpoint, strictly, and never trains.

    A missing file, a URL, missing or unexpected keys or mismatching shapes raise an error
    naming the module. Every parameter has ``requires_grad=False``, the module stays in eval
    mode whatever ``train()`` asks, and ``init_weights`` reloads the checkpoint. A subclass
    builds ``self.backbone``, then calls :meth:`load_checkpoint`.

    Args:
        name (str): Name in error messages (e.g. the teacher's).
        checkpoint (str, optional): Local path of the weights.
        prefix (str): Key prefix to strip from the checkpoint. Defaults to ''.
        init_cfg (dict, optional): Initialisation config. Defaults to None.
    """

    def __init__(self, name: str, checkpoint: Optional[str], prefix: str = '',
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.name = name
        self.checkpoint = checkpoint
        self.prefix = prefix

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

    def train(self, mode: bool = True) -> 'FrozenModule':
        """Stay in eval mode (no dropout, no drop path) whatever the runner asks."""
        return super().train(False)


class HiddenModuleDict(nn.ModuleDict):
    """A :class:`~torch.nn.ModuleDict` of frozen modules that the enclosing model neither
    saves, loads nor initialises.

    It is a submodule (it follows ``.to()`` / ``.half()`` and ``train()``), but:

    * its tensors are left out of ``state_dict()``, so a checkpoint holds only what training
      changes, and ``load_state_dict`` does not miss them (each module keeps the weights it
      read from its own checkpoint file when it was built);
    * ``apply`` does not reach it, so the enclosing model's ``init_cfg`` (e.g. Xavier on every
      ``Linear``) never overwrites the loaded weights.

    Args:
        modules (dict): name -> module.
    """

    def __init__(self, modules: Dict[str, nn.Module]) -> None:
        super().__init__(modules)
        self._hidden = True
        self._register_state_dict_hook(_drop_own_keys)
        self._register_load_state_dict_pre_hook(_keep_own_weights, with_module=True)

    def own_state_dict(self) -> Dict[str, torch.Tensor]:
        """The modules' tensors (``state_dict()`` leaves them out)."""
        self._hidden = False
        try:
            return self.state_dict()
        finally:
            self._hidden = True

    def apply(self, fn) -> 'HiddenModuleDict':
        """Do nothing: initialisers of the enclosing model must not touch loaded weights."""
        return self


def _drop_own_keys(module: HiddenModuleDict, state_dict: dict, prefix: str, *args) -> None:
    """State-dict hook: leave the frozen teachers out of checkpoints."""
    if module._hidden:
        for key in [k for k in state_dict if k.startswith(prefix)]:
            del state_dict[key]


def _keep_own_weights(module: HiddenModuleDict, state_dict: dict, prefix: str, *args) -> None:
    """Load pre-hook: a checkpoint without the teachers leaves their loaded weights as they
    are (filled in from the teachers themselves, so no key is reported missing)."""
    for key, value in module.own_state_dict().items():
        state_dict.setdefault(prefix + key, value)
