"""Method "sobel": the SEMEDA paper's baseline, cross-entropy plus λ × L1 between Sobel edges of mask and prediction."""

from .. import losses
from ..schema import NUMBER, Section, Setting, at_least
from .base import Method


class Sobel(Method):
    name = "sobel"
    sections = {"sobel": Section({
        "weight": Setting(NUMBER, losses.SOBEL_LAMBDA, at_least(0), "λ of the Sobel edge term (Table 1's best: 4)"),
    })}

    def loss(self, recipe):
        return losses.SobelEdgeLoss(recipe["sobel"]["weight"])
