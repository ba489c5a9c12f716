"""PNG and .npy files written band by band read back as the whole arrays (kerasweak predict's outputs)."""

import numpy as np
import pytest
from PIL import Image

from kerasweak.band_files import NpyBands, PngBands


@pytest.mark.parametrize("channels", [1, 3])
def test_png_written_in_bands_reads_back_exactly(tmp_path, channels):
    picture = np.random.default_rng(channels).integers(0, 256, (37, 23, channels), dtype=np.uint8)
    with open(tmp_path / "out.png", "wb") as handle:
        png = PngBands(handle, 37, 23, channels)
        for start in range(0, 37, 10):
            png.write(picture[start:start + 10])
        png.close()
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "out.png")).reshape(picture.shape), picture)


def test_npy_written_in_bands_reads_back_exactly_and_missing_rows_are_refused(tmp_path):
    maps = np.random.default_rng(0).random((19, 7, 3)).astype(np.float32)
    with open(tmp_path / "out.npy", "wb") as handle:
        stored = NpyBands(handle, maps.shape, np.float16)
        for start in range(0, 19, 4):
            stored.write(maps[start:start + 4])
        stored.close()
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), maps.astype(np.float16))
    with open(tmp_path / "short.png", "wb") as handle, pytest.raises(ValueError, match="got 4"):
        png = PngBands(handle, 5, 2, 1)
        png.write(np.zeros((4, 2), np.uint8))
        png.close()
