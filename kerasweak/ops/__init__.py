"""Graph ops for weak labels, batched and usable inside `model.fit`.

`edges` and `proportions` are pure keras.ops (any backend); the object sizes
(`sizes`) are TensorFlow ops and load on first use, so importing this package
does not need TensorFlow.
"""

import importlib

from .edges import boundary_band, semantic_edges, sobel_edges

_SIZES = ("chebyshev_distance", "object_size", "flipped_object_sizes")
__all__ = [*_SIZES, "semantic_edges", "boundary_band", "sobel_edges"]


def __getattr__(name):
    if name in _SIZES:
        return getattr(importlib.import_module(".sizes", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
