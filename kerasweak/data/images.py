"""Strict image and mask decoding: anything odd becomes a one-line KerasweakError."""

from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import KerasweakError

_SUPPORTED_MODES = {"L", "RGB", "RGBA", "P", "LA", "1"}
SUPPORTED_DEPTHS = "8 bits per channel: grayscale, RGB, RGBA or palette"


def _stored_mode(img):
    """The mode the file stores, e.g. 'RGB;16B' for a 16-bit RGB PNG that Pillow would silently cut to 8 bits."""
    for tile in img.tile:
        raw_mode = tile[3][0] if isinstance(tile[3], tuple) and tile[3] else tile[3]
        if isinstance(raw_mode, str) and ";16" in raw_mode:
            return raw_mode
    return img.mode


def _open(path):
    """The decoded image; no second copy (a 12000² RGB image is 576 MB inside Pillow)."""
    path = Path(path)
    try:
        img = Image.open(path)
        mode = _stored_mode(img)
        if mode not in _SUPPORTED_MODES:
            img.close()
            depth = "16 bits per channel; " if ";16" in mode else ""
            raise KerasweakError(f"unsupported image mode {mode!r} ({depth}kerasweak reads {SUPPORTED_DEPTHS})", path)
        img.load()  # raises on truncated data; closes a single-frame file
        return img
    except FileNotFoundError:
        raise KerasweakError("file not found", path) from None
    except UnidentifiedImageError:
        raise KerasweakError("cannot decode image: not an image file, or an unknown format", path) from None
    except (OSError, SyntaxError) as err:
        problem = "the file is truncated" if "truncated" in str(err) else str(err)
        raise KerasweakError(f"cannot decode image: {problem}", path) from None


def read_image(path, channels=3):
    """Read an image as uint8 (H, W, channels): 3 = RGB, 1 = grayscale; turned upright by its EXIF orientation.

    Cameras store a portrait photo as landscape pixels plus an EXIF orientation;
    viewers, and the masks drawn on them, show it turned.
    """
    img = _open(path)
    ImageOps.exif_transpose(img, in_place=True)
    target = "RGB" if channels == 3 else "L"
    if img.mode != target:
        img = img.convert(target)
    return _as_array(img)[..., :channels]


def _as_array(img, band_rows=512):
    """(H, W, bands) uint8 of a decoded image, copied a band of rows at a time so no whole second copy exists at once."""
    width, height = img.size
    array = np.empty((height, width, len(img.getbands())), dtype=np.uint8)
    for top in range(0, height, band_rows):
        band = np.asarray(img.crop((0, top, width, min(top + band_rows, height))), dtype=np.uint8)
        array[top:top + band.shape[0]] = band.reshape(band.shape[0], width, -1)
    return array


def read_mask(path):
    """Read a colour mask as uint8 RGB (H, W, 3); palette PNGs are expanded."""
    return np.asarray(_open(path).convert("RGB"), dtype=np.uint8)


def colours_to_labels(rgb, palette, path, ignore_colours=(), ignore_label=255):
    """Map an RGB mask to class indices; `ignore_colours` map to `ignore_label`.

    Any other colour is an error naming the file and the colour.
    """
    packed = (rgb[..., 0].astype(np.int32) << 16) | (rgb[..., 1].astype(np.int32) << 8) | rgb[..., 2]
    keys = [(int(r) << 16) | (int(g) << 8) | int(b) for r, g, b in palette]
    labels = np.full(packed.shape, -1, dtype=np.int32)
    for index, key in enumerate(keys):
        labels[packed == key] = index
    for r, g, b in ignore_colours:
        labels[packed == ((r << 16) | (g << 8) | b)] = ignore_label
    if (labels < 0).any():
        bad = int(packed[labels < 0][0])
        count = int((labels < 0).sum())
        raise KerasweakError(f"unknown mask colour #{bad:06X} ({count} pixels) is not in the palette", path)
    return labels.astype(np.uint8)


def cut_patches(array, size):
    """Non-overlapping size×size patches in row-major order, remainders dropped."""
    rows, cols = array.shape[0] // size, array.shape[1] // size
    return [array[r * size:(r + 1) * size, c * size:(c + 1) * size] for r in range(rows) for c in range(cols)]
