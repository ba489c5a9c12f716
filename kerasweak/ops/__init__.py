"""Graph ops for weak labels, batched and usable inside `model.fit`."""

from .edges import boundary_band, semantic_edges, sobel_edges
from .sizes import chebyshev_distance, flipped_object_sizes, object_size

__all__ = ["chebyshev_distance", "object_size", "flipped_object_sizes", "semantic_edges", "boundary_band", "sobel_edges"]
