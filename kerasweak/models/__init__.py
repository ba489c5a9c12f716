"""Models: the shared U-Net backbone and the method models built on it."""

from .spss import build_spss, build_spss_plus, segmenter_of
from .unet import build_unet

__all__ = ["build_unet", "build_spss", "build_spss_plus", "segmenter_of"]
