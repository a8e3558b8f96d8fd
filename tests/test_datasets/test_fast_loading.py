"""LoadImageFast / LoadImageBytes on every kind of file: the same pixels as LoadImageChecked,
fallbacks counted and logged with the file name, bad files named (issue 24)."""
import numpy as np
import pytest
import torch

import pcae_mm  # noqa: F401
from pcae_mm.datasets.transforms import (LoadImageBytes, LoadImageChecked, LoadImageFast,
                                         jpeg_info)
from pcae_mm.datasets.transforms import fast_loading

DECODERS = ('cv2', 'torchvision')
# files torchvision's decoder does not take, and why (the fallback reason logged)
FALLBACKS = {'cmyk': 'CMYK/YCCK JPEG (4 channels)', 'rgb': 'PNG file', 'png16': 'PNG file',
             'webp': 'not a JPEG file'}
GOOD = ('baseline', 'progressive', 'grey', 'cmyk', 'rotated', 'rgb', 'png16', 'webp')


def checked_chw(path: str) -> torch.Tensor:
    """What the shipped LoadImageChecked + PackInputs give: 3 x H x W uint8 BGR."""
    img = LoadImageChecked().transform(dict(img_path=path))['img']
    return torch.from_numpy(img).permute(2, 0, 1).contiguous()


def test_jpeg_header(odd_images):
    info = {k: jpeg_info(open(p, 'rb').read()) for k, p in odd_images.items()}
    assert info['baseline'][:5] == (160, 220, 3, 8, 'baseline') and info['baseline'].fast_decodable
    assert info['progressive'].process == 'progressive' and info['progressive'].fast_decodable
    assert info['grey'].components == 1 and info['grey'].fast_decodable
    assert info['cmyk'].components == 4 and not info['cmyk'].fast_decodable
    assert info['rotated'].orientation == 6 and info['rotated'].oriented_shape == (220, 160)
    assert info['baseline'].orientation == 1
    assert info['rgb'] is None and info['png16'] is None  # PNG
    assert info['not_an_image'] is None  # an end marker before any frame header
    assert jpeg_info(b'') is None and jpeg_info(b'\xff\xd8\xff\xc0\x00') is None


@pytest.mark.parametrize('decoder', DECODERS)
@pytest.mark.parametrize('name', GOOD)
def test_same_pixels_as_the_checked_loader(odd_images, decoder, name, caplog):
    path = odd_images[name]
    loader = LoadImageFast(decoder=decoder)
    out = loader.transform(dict(img_path=path))
    ref = checked_chw(path)
    img = out['img']
    assert img.dtype == torch.uint8 and img.shape == ref.shape  # EXIF rotation applied alike
    assert torch.equal(img, ref)
    assert out['img_shape'] == out['ori_shape'] == tuple(ref.shape[1:])
    reason = FALLBACKS.get(name)
    if decoder == 'torchvision' and reason:  # not taken by torchvision: logged, counted
        assert dict(loader.fallbacks) == {reason: 1}
    else:
        assert not loader.fallbacks


def test_fallback_is_logged_with_the_file_name(odd_images, monkeypatch):
    logged = []
    monkeypatch.setattr(fast_loading, 'print_log',
                        lambda msg, logger=None, level=None: logged.append((msg, level)))
    loader = LoadImageFast(decoder='torchvision', log_fallbacks=1)
    loader.transform(dict(img_path=odd_images['cmyk']))
    loader.transform(dict(img_path=odd_images['cmyk']))  # past log_fallbacks: counted only
    assert len(logged) == 1 and logged[0][1] == 30  # WARNING
    assert 'cmyk.jpg' in logged[0][0] and 'CMYK' in logged[0][0]
    assert 'checked loader' in logged[0][0]
    assert loader.fallbacks['CMYK/YCCK JPEG (4 channels)'] == 2


def test_rgb_channel_order(odd_images):
    for decoder in DECODERS:
        rgb = LoadImageFast(decoder=decoder, channel_order='rgb').transform(
            dict(img_path=odd_images['baseline']))['img']
        assert torch.equal(rgb, checked_chw(odd_images['baseline']).flip(0))


@pytest.mark.parametrize('decoder', DECODERS)
@pytest.mark.parametrize('name,why', [('truncated', 'truncated'), ('truncated_png', 'truncated'),
                                      ('corrupt', 'could not be decoded'),
                                      ('not_an_image', 'could not be decoded')])
def test_bad_files_are_named(odd_images, decoder, name, why):
    with pytest.raises(OSError, match=rf"{name}\.(jpg|png).*{why}.*LoadImageFast"):
        LoadImageFast(decoder=decoder).transform(dict(img_path=odd_images[name]))
    skip = LoadImageFast(decoder=decoder, on_corrupt='skip')
    assert skip.transform(dict(img_path=odd_images[name])) is None and skip.skipped == 1


def test_missing_file_is_named(tmp_path):
    for loader in (LoadImageFast(), LoadImageBytes(), LoadImageFast(on_corrupt='skip')):
        with pytest.raises(OSError, match='gone.JPEG'):
            loader.transform(dict(img_path=str(tmp_path / 'gone.JPEG')))


def test_bad_arguments():
    with pytest.raises(ValueError, match='decoder'):
        LoadImageFast(decoder='pillow')
    with pytest.raises(ValueError, match='channel_order'):
        LoadImageFast(channel_order='rbg')
    with pytest.raises(ValueError, match='LoadImageChecked'):
        LoadImageFast(to_float32=True)
    with pytest.raises(ValueError, match='LoadImageChecked'):
        LoadImageFast(color_type='grayscale')
    with pytest.raises(ValueError, match='on_corrupt'):
        LoadImageFast(on_corrupt='ignore')
    with pytest.raises(ValueError, match='always gives RGB'):
        LoadImageBytes(channel_order='bgr')


def test_torchvision_without_decoder_is_a_clear_error(monkeypatch):
    def broken(data, exif=True):
        raise RuntimeError("Couldn't load the image extension")

    monkeypatch.setattr(fast_loading, '_TORCHVISION_OK', None)
    monkeypatch.setattr(fast_loading, 'decode_jpeg_rgb', broken)
    with pytest.raises(ImportError, match="torchvision cannot decode JPEG.*decoder='cv2'"):
        LoadImageFast(decoder='torchvision')
    LoadImageFast(decoder='cv2')  # the default does not need it


def test_bytes_for_the_gpu_and_decoded_files_otherwise(odd_images):
    loader = LoadImageBytes()
    for name in ('baseline', 'progressive'):  # what nvjpeg decodes: the file's bytes
        out = loader.transform(dict(img_path=odd_images[name]))
        data = open(odd_images[name], 'rb').read()
        assert out['img'].ndim == 1 and out['img'].numpy().tobytes() == data
        assert out['img_shape'] == out['ori_shape'] == (160, 220)  # from the header
    for name in ('grey', 'cmyk', 'rotated', 'rgb', 'png16'):  # decoded here, RGB
        out = loader.transform(dict(img_path=odd_images[name]))
        assert torch.equal(out['img'], checked_chw(odd_images[name]).flip(0)), name
        assert out['img_shape'] == tuple(out['img'].shape[1:])
    assert loader.decoded_here == {'grey JPEG': 1, 'CMYK/YCCK JPEG (4 channels)': 1,
                                   'EXIF-rotated JPEG': 1, 'PNG file': 2}
    with pytest.raises(OSError, match=r'truncated\.jpg.*truncated'):
        loader.transform(dict(img_path=odd_images['truncated']))
    assert LoadImageBytes(on_corrupt='skip').transform(
        dict(img_path=odd_images['truncated'])) is None


def test_loader_output_is_what_pack_inputs_takes(odd_images):
    from mmpretrain.datasets.transforms import PackInputs
    packed = PackInputs().transform(LoadImageFast().transform(
        dict(img_path=odd_images['baseline'])))
    assert packed['inputs'].shape == (3, 160, 220)
    assert np.array_equal(packed['inputs'].numpy(), checked_chw(odd_images['baseline']).numpy())
