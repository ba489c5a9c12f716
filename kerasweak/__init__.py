"""kerasweak: Keras 3 semantic segmentation from cheap labels.

`from kerasweak import layers, losses, metrics, models` gives the building
blocks for plain `model.compile` / `model.fit`; `kerasweak.runner` runs the
declarative recipes behind the `kerasweak` command.
"""

from . import data, layers, losses, metrics, models
from .errors import KerasweakError

__version__ = "0.1.0"
__all__ = ["data", "layers", "losses", "metrics", "models", "KerasweakError", "__version__"]
