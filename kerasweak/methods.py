"""Method registry: what a recipe's `method` key means.

A method says how to build the training model around the shared U-Net, which
labels of a PatchSet it trains on, and which loss it uses. Later methods
(keypoints, sizes, SEMEDA) register here too.
"""

from dataclasses import dataclass
from typing import Callable

import numpy as np

from . import losses
from .models import build_spss, build_unet


@dataclass(frozen=True)
class Method:
    name: str
    needs_masks: bool
    build: Callable  # (num_outputs, model_config) -> training model
    targets: Callable  # (PatchSet) -> training targets
    loss: Callable  # (train_config) -> keras loss


def _unet(num_outputs, config):
    return build_unet(num_outputs, base_filters=config.get("base_filters", 16), channels=config.get("channels", 3))


METHODS = {
    "spss": Method(
        name="spss",
        needs_masks=False,
        build=lambda c, cfg: build_spss(_unet(c, cfg)),
        targets=lambda patches: patches.proportions,
        loss=lambda cfg: losses.ProportionLoss(form=cfg.get("loss", "mse")),
    ),
    "pixel": Method(
        name="pixel",
        needs_masks=True,
        build=_unet,
        targets=lambda patches: patches.masks.astype(np.int32),
        loss=lambda cfg: losses.PixelCrossEntropy(),
    ),
}


def get_method(name):
    try:
        return METHODS[name]
    except KeyError:
        raise ValueError(f"unknown method {name!r}; known: {', '.join(sorted(METHODS))}") from None
