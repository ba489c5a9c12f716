"""The training methods, one module each; a recipe's `method` key names one (see docs/adding-a-method.md).

pixel: supervised benchmark; spss: class proportions (eq. 1); spss_plus:
proportions plus keypoints (eq. 4); points: keypoints only; sizes: object
sizes, two stages; semeda: SEMEDA edge loss; sobel: the Sobel edge baseline.
"""

from ..errors import KerasweakError
from .base import Method
from .pixel import Pixel
from .points import Points
from .semeda import Semeda
from .sizes import Sizes
from .sobel import Sobel
from .spss import Spss
from .spss_plus import SpssPlus

METHODS = {method.name: method for method in (Pixel(), Spss(), SpssPlus(), Points(), Sizes(), Semeda(), Sobel())}


def get_method(name, where=None):
    """The registered Method `name`; an unknown name is a one-line error listing the known ones."""
    try:
        return METHODS[name]
    except (KeyError, TypeError):
        raise KerasweakError(f"unknown method {name!r}; known: {', '.join(sorted(METHODS))}", where) from None


__all__ = ["METHODS", "Method", "get_method"]
