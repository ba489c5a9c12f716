"""`LazyPatches`: patches cut from image files, decoded when indexed, for folders larger than memory.

A generic folder's patches (kerasweak.data.folder) are held as (source,
origin) pairs; indexing decodes the source and cuts the patch. Each thread
keeps the last source it decoded, so patches read in order (evaluation,
figures, the validation part) decode each image once; the training order
decodes one image per patch, which is what bounds memory to a few images.
"""

import threading

import numpy as np


class LazyPatches:
    """An (N, height, width[, channels]) array-like of patches, decoded from their sources on access.

    decode(source) gives a whole source's array; patch i is its window of
    `patch_shape` at origins[i]. Integer indexing gives one patch, slices and
    index arrays give a stacked array, `select` gives a lazy subset and
    `astype` a lazy conversion; np.asarray decodes everything (small folders only).
    """

    def __init__(self, decode, sources, origins, patch_shape, channels=None, dtype=np.uint8):
        self.decode = decode
        self.sources = list(sources)
        self.origins = list(origins)
        self.patch_shape = tuple(patch_shape)
        self.channels = channels
        self.dtype = np.dtype(dtype)
        self.last_decoded = threading.local()

    @property
    def shape(self):
        return (len(self.sources), *self.patch_shape) + (() if self.channels is None else (self.channels,))

    @property
    def ndim(self):
        return len(self.shape)

    def __len__(self):
        return len(self.sources)

    def _source(self, source):
        cached = getattr(self.last_decoded, "source", None)
        if cached is None or cached[0] != source:
            cached = (source, self.decode(source))
            self.last_decoded.source = cached
        return cached[1]

    def patch(self, i):
        """Patch i as a new array of `dtype` (it does not keep its source image alive)."""
        row, col = self.origins[i]
        height, width = self.patch_shape
        return self._source(self.sources[i])[row:row + height, col:col + width].astype(self.dtype)

    def __getitem__(self, key):
        if isinstance(key, (int, np.integer)):
            return self.patch(range(len(self))[key])
        if isinstance(key, slice):
            key = range(len(self))[key]
        elif not (isinstance(key, (list, range, np.ndarray)) and np.ndim(key) == 1):
            return np.asarray(self)[key]
        index = self._index(key)
        if not len(index):
            return np.zeros((0, *self.shape[1:]), self.dtype)
        return np.stack([self.patch(i) for i in index])

    def _index(self, key):
        key = np.asarray(key)
        return np.arange(len(self))[key if key.size else key.astype(int)]

    def select(self, index):
        """The patches at `index` (indices or a boolean mask), still lazy."""
        index = self._index(index)
        return LazyPatches(self.decode, [self.sources[i] for i in index], [self.origins[i] for i in index],
                           self.patch_shape, self.channels, self.dtype)

    def astype(self, dtype, copy=True):
        """The same patches converted to `dtype` as they are read."""
        return LazyPatches(self.decode, self.sources, self.origins, self.patch_shape, self.channels, dtype)

    def __array__(self, dtype=None, copy=None):
        array = self[slice(None)]
        return array if dtype is None else array.astype(dtype)


def take(array, index):
    """array[index], kept lazy for a LazyPatches (PatchSet.subset)."""
    return array.select(index) if isinstance(array, LazyPatches) else array[index]
