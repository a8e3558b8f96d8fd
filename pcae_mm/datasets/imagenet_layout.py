"""ImageNet's folder layout with any number of classes (issue 15)."""
from mmpretrain.datasets import ImageNet
from mmpretrain.registry import DATASETS


@DATASETS.register_module()
class ImageNetLayout(ImageNet):
    """mmpretrain's :class:`~mmpretrain.datasets.ImageNet` for any folder in its layout.

    ``<data_root>/<split>/<class>/<image>``, with an optional ``<data_root>/meta/<split>.txt``
    (``<class>/<image> <label>`` lines). mmpretrain's ``ImageNet`` fixes the 1000 ImageNet-1k
    class names, so a folder of 4 classes without ``meta/train.txt`` fails ("number of
    subfolders (4) doesn't match ... classes (1000)"). Here the classes are the sub-folders
    (sorted) unless ``metainfo=dict(classes=...)`` names them; with a meta file the labels come
    from it. Pre-training ignores the labels either way.
    """

    METAINFO = {'classes': None}
