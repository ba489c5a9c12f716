"""kerasweak: Keras 3 semantic segmentation from cheap labels.

`from kerasweak import layers, losses, metrics, models` gives the building
blocks for plain `model.compile` / `model.fit`; `kerasweak.runner` runs the
declarative recipes behind the `kerasweak` command. Submodules load on first
use, so importing the package alone does not start TensorFlow.
"""

import importlib

from .errors import KerasweakError

__version__ = "0.1.0"
_SUBMODULES = ("data", "layers", "losses", "metrics", "models", "ops")
__all__ = [*_SUBMODULES, "KerasweakError", "__version__"]


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'kerasweak' has no attribute {name!r}")
