"""Models: the shared U-Net backbone and the method models built on it."""

from .semeda import load_or_train_semeda, train_semeda
from .sizes import SizeSupervisedSegmenter, sampled_size_gradient, size_supervised_objective
from .spss import build_spss, build_spss_plus, segmenter_of
from .unet import build_unet

__all__ = ["build_unet", "build_spss", "build_spss_plus", "segmenter_of",
           "SizeSupervisedSegmenter", "sampled_size_gradient", "size_supervised_objective",
           "train_semeda", "load_or_train_semeda"]
