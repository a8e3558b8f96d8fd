"""Image files for the input-pipeline tests: ImageNet-like photographs and the unusual files a
real dataset holds (grey, CMYK, 16-bit PNG, EXIF-rotated, progressive, truncated, corrupt)."""
import os.path as osp

import cv2
import numpy as np
import pytest
from PIL import Image


@pytest.fixture(scope='session')
def photos(tmp_path_factory) -> list:
    """12 ImageNet-like JPEGs (crops of scikit-image's photographs, 400-500 px, quality 90),
    as the benchmark generates them."""
    from tools.analysis.pcae_bench.data_pipeline import make_image_set
    images = make_image_set(str(tmp_path_factory.mktemp('photos')), num=12)
    assert images['content'] == 'photographs'  # scikit-image is installed by setup_env.sh
    return images['paths']


def _photo() -> np.ndarray:
    from skimage import data as skdata
    return np.ascontiguousarray(skdata.astronaut()[100:260, 150:370])  # 160 x 220 RGB


def _cut(data: bytes, keep: float = 0.6) -> bytes:
    return data[:int(len(data) * keep)]


@pytest.fixture(scope='session')
def odd_images(tmp_path_factory) -> dict:
    """name -> path of every kind of file the loaders must handle."""
    root = tmp_path_factory.mktemp('odd')
    rgb = _photo()
    paths = {}

    def path(name):
        stem, ext = name.split('.')
        paths[stem if ext != 'webp' else 'webp'] = str(root / name)
        return str(root / name)

    Image.fromarray(rgb).save(path('baseline.jpg'), quality=90)
    Image.fromarray(rgb).save(path('progressive.jpg'), quality=90, progressive=True)
    Image.fromarray(rgb).convert('L').save(path('grey.jpg'), quality=90)
    Image.fromarray(rgb).convert('CMYK').save(path('cmyk.jpg'), quality=90)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise when shown
    Image.fromarray(rgb).save(path('rotated.jpg'), quality=90, exif=exif)
    Image.fromarray(rgb).save(path('rgb.png'))
    cv2.imwrite(path('png16.png'), rgb[..., ::-1].astype(np.uint16) * 257)
    Image.fromarray(rgb).save(path('rgb.webp'))
    data = open(paths['baseline'], 'rb').read()
    with open(path('truncated.jpg'), 'wb') as f:
        f.write(_cut(data))
    with open(path('truncated_png.png'), 'wb') as f:
        f.write(_cut(open(paths['rgb'], 'rb').read()))
    bad = bytearray(data)  # a scan naming a component the frame does not have: no decoder
    sos = bad.index(b'\xff\xda')
    bad[sos + 5] = 99
    with open(path('corrupt.jpg'), 'wb') as f:
        f.write(bytes(bad))
    with open(path('not_an_image.jpg'), 'wb') as f:
        f.write(b'\xff\xd8\xff\xe0 this is not really a jpeg \xff\xd9')
    assert all(osp.isfile(p) for p in paths.values())
    return paths


@pytest.fixture(scope='session')
def red_jpeg(tmp_path_factory) -> str:
    """A pure red (RGB 255, 0, 0) 300 x 400 JPEG: channel order is visible at a glance."""
    path = str(tmp_path_factory.mktemp('red') / 'red.jpg')
    img = np.zeros((300, 400, 3), np.uint8)
    img[..., 0] = 255
    Image.fromarray(img).save(path, quality=95)
    return path
