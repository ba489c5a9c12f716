"""kerasweak: Keras 3 semantic segmentation from cheap labels.

`from kerasweak import layers, losses, metrics, models` gives the building
blocks for plain `model.compile` / `model.fit` (`proportion_losses`: the losses
from proportions beyond ProportionLoss); `kerasweak.runner` runs the
declarative recipes behind the `kerasweak` command. Submodules load on first
use, so importing the package alone does not start TensorFlow; layers,
losses, metrics, ops.edges and the U-Net/SPSS builders are pure keras.ops
and never import it under another Keras backend (KERAS_BACKEND=jax).

`import kerasweak` still registers every custom object for `.keras` files: at
once if Keras is already imported, else the moment Keras is (see `_AfterKeras`).
"""

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys

from .errors import KerasweakError

__version__ = "0.1.0"
_SUBMODULES = ("data", "layers", "losses", "metrics", "models", "ops", "proportion_losses", "schedules")
_REGISTERING = ("layers", "losses", "metrics", "proportion_losses", "schedules")  # the modules whose classes register with Keras, on any backend
__all__ = [*_SUBMODULES, "KerasweakError", "__version__"]


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'kerasweak' has no attribute {name!r}")


def _importing_kerasweak():
    """True while some kerasweak module is part-way through its own import (it will import what it needs)."""
    return any(getattr(getattr(module, "__spec__", None), "_initializing", False)
               for name, module in list(sys.modules.items()) if name.startswith(__name__ + "."))


def _register_custom_objects():
    """Import the modules that define kerasweak's registered classes; Keras registers them on import.

    models.sizes (SizeSupervisedSegmenter, a TensorFlow train_step) only on the
    TensorFlow backend, so that other backends never import TensorFlow. Skipped
    when a kerasweak module imported Keras itself: importing the others from
    inside that half-done import could meet it half-defined.
    """
    if not _importing_kerasweak():
        tensorflow = sys.modules["keras"].config.backend() == "tensorflow"
        for name in (*_REGISTERING, "models.sizes") if tensorflow else _REGISTERING:
            importlib.import_module(f".{name}", __name__)


class _AfterKeras(importlib.abc.MetaPathFinder):
    """An import hook: once `keras` has been imported, register kerasweak's custom objects, then step aside.

    It stays in sys.meta_path until Keras actually executes (a mere find_spec, as
    TensorFlow makes before importing Keras, is not an import).
    """

    def find_spec(self, fullname, path, target=None):
        if fullname != "keras":
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return spec
        load = spec.loader.exec_module

        def exec_module(module):
            load(module)
            if self in sys.meta_path:
                sys.meta_path.remove(self)
            _register_custom_objects()

        spec.loader.exec_module = exec_module
        return spec


if "keras" in sys.modules:
    _register_custom_objects()
elif not any(isinstance(finder, _AfterKeras) for finder in sys.meta_path):
    sys.meta_path.insert(0, _AfterKeras())
