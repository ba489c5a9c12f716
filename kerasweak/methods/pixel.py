"""Method "pixel": the fully supervised benchmark, per-pixel cross-entropy on the masks (unlabelled pixels ignored)."""

from .. import losses
from .base import Method


class Pixel(Method):
    name = "pixel"

    def loss(self, recipe):
        return losses.PixelCrossEntropy()
