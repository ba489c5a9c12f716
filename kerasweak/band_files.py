"""PNG and .npy files written band of rows by band, so `kerasweak predict` never holds a whole image's output.

Pillow and numpy write a picture from one whole array (Pillow also copies an
RGB one into its own 4-byte pixels): for a 12000² image that is 0.4-0.6 GB per
output. These writers take the rows top to bottom as the tiling yields them.
"""

import struct
import zlib

import numpy as np

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_COLOUR_TYPES = {1: 0, 3: 2}  # channels -> PNG colour type (grey, RGB)


class PngBands:
    """An 8-bit grey or RGB PNG of height × width, filled by `write(rows)` top to bottom into an open binary file."""

    def __init__(self, handle, height, width, channels):
        self.handle, self.height, self.width, self.channels = handle, height, width, channels
        self.rows_written = 0
        self.compressor = zlib.compressobj(6)
        handle.write(PNG_SIGNATURE)
        self._chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, PNG_COLOUR_TYPES[channels], 0, 0, 0))

    def _chunk(self, kind, data):
        self.handle.write(struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data)))

    def write(self, rows):
        """Append (k, width[, channels]) uint8 rows, each with PNG's "none" filter."""
        rows = np.asarray(rows, np.uint8).reshape(len(rows), self.width * self.channels)
        data = self.compressor.compress(np.concatenate([np.zeros((len(rows), 1), np.uint8), rows], axis=1).tobytes())
        if data:
            self._chunk(b"IDAT", data)
        self.rows_written += len(rows)

    def close(self):
        """Finish the file; every row must have been written."""
        if self.rows_written != self.height:
            raise ValueError(f"PNG of {self.height} rows got {self.rows_written}")
        self._chunk(b"IDAT", self.compressor.flush())
        self._chunk(b"IEND", b"")


class NpyBands:
    """A .npy array of `shape` and `dtype`, filled by `write(rows)` along its first axis into an open binary file."""

    def __init__(self, handle, shape, dtype):
        self.handle, self.shape, self.dtype = handle, tuple(shape), np.dtype(dtype)
        self.rows_written = 0
        np.lib.format.write_array_header_1_0(handle, {"descr": np.lib.format.dtype_to_descr(self.dtype),
                                                      "fortran_order": False, "shape": self.shape})

    def write(self, rows):
        """Append rows of shape (k, *shape[1:]), converted to the array's dtype."""
        self.handle.write(np.ascontiguousarray(rows, self.dtype).tobytes())
        self.rows_written += len(rows)

    def close(self):
        """Check every row was written."""
        if self.rows_written != self.shape[0]:
            raise ValueError(f"array of {self.shape[0]} rows got {self.rows_written}")
