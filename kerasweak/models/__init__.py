"""Models: the shared U-Net backbone and the method models built on it."""

from .sizes import SizeSupervisedSegmenter, sampled_size_gradient, size_supervised_objective
from .spss import build_spss, build_spss_plus, segmenter_of
from .unet import build_unet

__all__ = ["build_unet", "build_spss", "build_spss_plus", "segmenter_of",
           "SizeSupervisedSegmenter", "sampled_size_gradient", "size_supervised_objective"]
