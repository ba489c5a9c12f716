"""Models: the shared U-Net backbone and the method models built on it.

Each name loads its submodule on first use. `unet` and `spss` (build_unet,
build_spss, build_spss_plus, build_spss_signals, segmenter_of) are pure Keras and run on any
backend; `sizes` and `semeda` (the size-supervised segmenter, SEMEDA training)
need TensorFlow, which `from kerasweak.models import build_unet` thus does not import.
"""

import importlib

_HOMES = {"build_unet": "unet", "build_spss": "spss", "build_spss_plus": "spss", "build_spss_signals": "spss",
          "segmenter_of": "spss",
          "SizeSupervisedSegmenter": "sizes", "sampled_size_gradient": "sizes", "size_supervised_objective": "sizes",
          "train_semeda": "semeda", "load_or_train_semeda": "semeda"}
__all__ = list(_HOMES)


def __getattr__(name):
    if name in _HOMES:
        return getattr(importlib.import_module(f".{_HOMES[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
