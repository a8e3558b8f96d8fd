from .mim_vit import MIMViT
from .mcmae_vit import MCMAEViT  # noqa: F401

__all__ = ['MIMViT']
