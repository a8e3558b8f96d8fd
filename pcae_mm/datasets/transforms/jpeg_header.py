"""What a JPEG file is, from its header alone (no decoding): size, channels, bit depth, coding
process and EXIF orientation.

The fast loaders route a file by it: an 8-bit baseline / progressive JPEG with 1 or 3 channels
goes to torchvision's libjpeg-turbo (CPU) or nvjpeg (GPU) decoder; anything else (CMYK / YCCK,
12-bit, lossless, hierarchical, PNG, ...) goes to the checked loader, so every file decodes to
what :class:`~pcae_mm.datasets.transforms.LoadImageChecked` gives. Reading the header costs a few
microseconds (the markers before the first scan, usually well under 1 KiB unless the file has a
large EXIF thumbnail or ICC profile).
"""
from typing import NamedTuple, Optional

# Start-of-frame markers (ITU T.81 Table B.1): 0xC0-0xCF except DHT (C4), JPG (C8), DAC (CC).
SOF_PROCESS = {
    0xC0: 'baseline', 0xC1: 'extended', 0xC2: 'progressive', 0xC3: 'lossless',
    0xC5: 'hierarchical', 0xC6: 'hierarchical', 0xC7: 'hierarchical',
    0xC9: 'arithmetic', 0xCA: 'arithmetic', 0xCB: 'arithmetic',
    0xCD: 'arithmetic', 0xCE: 'arithmetic', 0xCF: 'arithmetic',
}
#: Coding processes that torchvision's CPU decoder gets for the same pixels as OpenCV's.
FAST_PROCESSES = ('baseline', 'extended', 'progressive')
_STANDALONE = {0x01} | set(range(0xD0, 0xD9))  # TEM, RST0-7, SOI: no length field
_EXIF_ORIENTATION_TAG = 0x0112


class JPEGInfo(NamedTuple):
    """Header facts of one JPEG file.

    Attributes:
        height (int): Stored height in pixels (before EXIF orientation).
        width (int): Stored width in pixels (before EXIF orientation).
        components (int): 1 (grey), 3 (YCbCr / RGB) or 4 (CMYK / YCCK).
        precision (int): Bits per sample (8, or 12 / 16 for extended / lossless files).
        process (str): ``'baseline'``, ``'extended'``, ``'progressive'``, ``'lossless'``,
            ``'hierarchical'`` or ``'arithmetic'``.
        orientation (int): EXIF orientation 1-8 (1 = as stored; also when there is no EXIF).
    """
    height: int
    width: int
    components: int
    precision: int
    process: str
    orientation: int

    @property
    def fast_decodable(self) -> bool:
        """8-bit grey or colour, Huffman-coded sequential / progressive."""
        return (self.precision == 8 and self.components in (1, 3)
                and self.process in FAST_PROCESSES and self.height > 0 and self.width > 0)

    @property
    def oriented_shape(self):
        """(H, W) after the EXIF orientation is applied (5-8 swap the sides)."""
        if self.orientation in (5, 6, 7, 8):
            return self.width, self.height
        return self.height, self.width


def _exif_orientation(tiff: bytes) -> int:
    """Orientation tag of IFD0 of an EXIF TIFF block (1 when absent or malformed)."""
    if len(tiff) < 8 or tiff[:2] not in (b'II', b'MM'):
        return 1
    order = 'little' if tiff[:2] == b'II' else 'big'
    ifd = int.from_bytes(tiff[4:8], order)
    if ifd + 2 > len(tiff):
        return 1
    count = int.from_bytes(tiff[ifd:ifd + 2], order)
    for k in range(count):
        entry = ifd + 2 + 12 * k
        if entry + 12 > len(tiff):
            break
        if int.from_bytes(tiff[entry:entry + 2], order) == _EXIF_ORIENTATION_TAG:
            value = int.from_bytes(tiff[entry + 8:entry + 10], order)  # SHORT, left-aligned
            return value if 1 <= value <= 8 else 1
    return 1


def jpeg_info(data: bytes) -> Optional[JPEGInfo]:
    """Parse the markers of ``data`` up to the frame header.

    Args:
        data (bytes): The whole file (only the header part is read).

    Returns:
        JPEGInfo or None: None when ``data`` is not a JPEG file or its header is malformed
        (no frame header before the first scan, a segment running past the end).
    """
    if data[:2] != b'\xff\xd8':
        return None
    n = len(data)
    i = 2
    orientation = 1
    while i + 4 <= n:
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in _STANDALONE:
            i += 2
            continue
        if marker == 0xDA or marker == 0xD9:  # a scan or the end before any frame header
            return None
        length = int.from_bytes(data[i + 2:i + 4], 'big')
        if length < 2 or i + 2 + length > n:
            return None
        segment = data[i + 4:i + 2 + length]
        if marker == 0xE1 and segment[:6] == b'Exif\x00\x00':
            orientation = _exif_orientation(segment[6:])
        elif marker in SOF_PROCESS:
            if len(segment) < 6:
                return None
            return JPEGInfo(
                height=int.from_bytes(segment[1:3], 'big'),
                width=int.from_bytes(segment[3:5], 'big'),
                components=segment[5],
                precision=segment[0],
                process=SOF_PROCESS[marker],
                orientation=orientation)
        i += 2 + length
    return None
