"""Method registry: what a recipe's `method` key means.

A method says how to build the training model around the shared U-Net, which
labels of a PatchSet it trains on, and which loss (and loss weights) it uses,
each read from the recipe. Later methods (sizes, SEMEDA) register here too.
"""

from dataclasses import dataclass
from typing import Callable

import numpy as np

from . import losses
from .data import sample_keypoints
from .errors import KerasweakError
from .models import build_spss, build_spss_plus, build_unet


@dataclass(frozen=True)
class Method:
    name: str
    build: Callable  # (num_outputs, model_config) -> training model
    targets: Callable  # (PatchSet, recipe) -> training targets
    loss: Callable  # (recipe) -> keras loss, or a dict of them per model output
    loss_weights: Callable = lambda recipe: None  # (recipe) -> weights per model output, or None


def _unet(num_outputs, config):
    return build_unet(num_outputs, base_filters=config.get("base_filters", 16), channels=config.get("channels", 3))


def _proportion_loss(recipe):
    return losses.ProportionLoss(form=recipe["train"].get("loss", "mse"))


KEYPOINT_DEFAULTS = {"k": 3, "radius": 0, "classes": None, "fraction_of_images": 1.0, "alpha": 0.5, "seed": 0}


def keypoint_settings(recipe):
    """The recipe's [keypoints] section with defaults; unknown keys and α outside [0, 1] are errors."""
    settings = {**KEYPOINT_DEFAULTS, **recipe.get("keypoints", {})}
    unknown = sorted(set(settings) - set(KEYPOINT_DEFAULTS))
    if unknown:
        raise KerasweakError(f"[keypoints] has unknown keys {', '.join(unknown)}; known: {', '.join(KEYPOINT_DEFAULTS)}", recipe["name"])
    if not 0 <= settings["alpha"] <= 1:
        raise KerasweakError(f"[keypoints] alpha must be between 0 and 1, got {settings['alpha']}", recipe["name"])
    return settings


def _keypoint_targets(patches, recipe):
    """Proportions plus keypoints sampled from the masks (paper eq. 4's two targets)."""
    s = keypoint_settings(recipe)
    classes = s["classes"]
    if classes is not None:
        unknown = [c for c in classes if c not in patches.class_names]
        if unknown:
            raise KerasweakError(f"[keypoints] classes: unknown {', '.join(unknown)}; known: {', '.join(patches.class_names)}", recipe["name"])
        classes = [patches.class_names.index(c) for c in classes]
    keypoints = sample_keypoints(patches.masks, patches.proportions.shape[1], s["k"], radius=s["radius"], classes=classes,
                                 fraction_of_images=s["fraction_of_images"], seed=s["seed"])
    return {"proportions": patches.proportions, "class_maps": losses.pack_keypoints(*keypoints)}


METHODS = {
    "spss": Method(
        name="spss",
        build=lambda c, cfg: build_spss(_unet(c, cfg)),
        targets=lambda patches, recipe: patches.proportions,
        loss=_proportion_loss,
    ),
    "spss_plus": Method(
        name="spss_plus",
        build=lambda c, cfg: build_spss_plus(_unet(c, cfg)),
        targets=_keypoint_targets,
        loss=lambda recipe: {"proportions": _proportion_loss(recipe), "class_maps": losses.KeypointLoss()},
        loss_weights=lambda recipe: {"proportions": keypoint_settings(recipe)["alpha"],
                                     "class_maps": 1.0 - keypoint_settings(recipe)["alpha"]},
    ),
    "pixel": Method(
        name="pixel",
        build=_unet,
        targets=lambda patches, recipe: patches.masks.astype(np.int32),
        loss=lambda recipe: losses.PixelCrossEntropy(),
    ),
}


def get_method(name):
    try:
        return METHODS[name]
    except KeyError:
        raise KerasweakError(f"unknown method {name!r}; known: {', '.join(sorted(METHODS))}") from None
