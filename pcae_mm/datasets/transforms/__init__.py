from .loading import LoadImageChecked

__all__ = ['LoadImageChecked']
