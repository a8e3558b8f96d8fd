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

    def _find_samples(self):
        """mmpretrain's folder scan, with errors that name the folder and the layout."""
        if self.with_label:
            check_class_folders(self.img_prefix, self.extensions)
        try:
            return super()._find_samples()
        except OSError as e:
            loop = find_symlink_loop(self.img_prefix)
            if loop is not None:
                raise DatasetLayoutError(
                    f'symbolic link loop in the dataset: {loop[0]!r} points back to '
                    f'{loop[1]!r}, so listing the images would never end ({e.strerror}). '
                    'Remove or replace the link.') from None
            raise DatasetLayoutError(
                f'cannot list the images under {self.img_prefix!r}: {e}. Check the folder and '
                'its permissions.') from None
        except RuntimeError as e:
            if 'Found 0 files' not in str(e):
                raise
            raise DatasetLayoutError(
                f'no images under {self.img_prefix!r} (looked for {", ".join(self.extensions)} '
                f'in its class folders). {LAYOUT}') from None


class DatasetLayoutError(RuntimeError):
    """The dataset folder is not in the ImageNet layout (or cannot be listed)."""


#: the layout, for error messages
LAYOUT = ('Expected the ImageNet layout: <data_root>/train/<class>/<image> (every image inside '
          'a class folder; for pre-training one folder holding all images is enough, e.g. '
          '<data_root>/train/all/<image>), optionally with <data_root>/meta/train.txt.')


def check_class_folders(folder: str, extensions) -> None:
    """Raise :class:`DatasetLayoutError` when ``folder`` is missing, empty, or holds its
    images directly instead of in class sub-folders."""
    import os
    import os.path as osp
    if '://' in str(folder):
        return  # a remote backend: mmpretrain lists it
    if not osp.isdir(folder):
        raise DatasetLayoutError(f'the image folder {folder!r} does not exist. {LAYOUT}')
    try:
        entries = list(os.scandir(folder))
    except OSError as e:
        raise DatasetLayoutError(f'cannot list {folder!r}: {e.strerror}. {LAYOUT}') from None
    subdirs = [e for e in entries if _is_dir(e)]
    images = [e.name for e in entries if e.name.lower().endswith(tuple(extensions))
              and not _is_dir(e)]
    if subdirs:
        return
    if images:
        raise DatasetLayoutError(
            f'{len(images)} images (e.g. {images[0]!r}) lie directly in {folder!r}, which has '
            f'no class folders. Move them into class folders, e.g. {folder}/all/. {LAYOUT}')
    raise DatasetLayoutError(f'the image folder {folder!r} is empty'
                             + (f' (it holds only {sorted(e.name for e in entries)[:3]})'
                                if entries else '') + f'. {LAYOUT}')


def _is_dir(entry) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


def find_symlink_loop(root: str):
    """``(link, target)`` of the first directory link under ``root`` that leads back to a
    folder already on its path (or a link that loops on itself: ``(link, its target)``), or
    None."""
    import errno
    import os
    import os.path as osp
    stack = [(root, (osp.realpath(root), ))]
    while stack:
        folder, ancestors = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            try:
                is_dir = entry.is_dir()
            except OSError as e:  # a link to itself, or links pointing at each other
                if e.errno == errno.ELOOP:
                    return entry.path, os.readlink(entry.path)
                continue
            if not is_dir:
                continue
            real = osp.realpath(entry.path)
            if real in ancestors:
                return entry.path, real
            stack.append((entry.path, ancestors + (real, )))
    return None
