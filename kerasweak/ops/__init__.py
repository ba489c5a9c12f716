"""Graph ops for weak labels, batched and usable inside `model.fit`."""

from .sizes import chebyshev_distance, flipped_object_sizes, object_size

__all__ = ["chebyshev_distance", "object_size", "flipped_object_sizes"]
