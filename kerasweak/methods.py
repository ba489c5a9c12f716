"""Method registry: what a recipe's `method` key means.

A method says how to build the training model around the shared U-Net, which
labels of a PatchSet it trains on, and which loss (and loss weights) it uses,
each read from the recipe. The object-size method trains in two stages
(`kerasweak.training.train_size_seed`); its recipe settings and targets are here.
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
    """How a recipe's `method` trains: one `fit` of `build`/`targets`/`loss`, or its own `train` procedure.

    train(recipe, train, val, seed, seed_dir, verbose, evaluate) -> (model, seconds, extra metrics)
    replaces the single fit for multi-stage methods; `evaluate(model)` gives test figures.
    """

    name: str
    build: Callable | None = None  # (num_outputs, model_config) -> training model
    targets: Callable | None = None  # (PatchSet, recipe) -> training targets
    loss: Callable | None = None  # (recipe) -> keras loss, or a dict of them per model output
    loss_weights: Callable = lambda recipe: None  # (recipe) -> weights per model output, or None
    train: Callable | None = None


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


SIZE_DEFAULTS = {"pixel_annotated": 85, "num_samples": 1, "augment": True, "finetune_learning_rate": 1e-4,
                 "finetune_epochs": 40, "finetune_patience": 5}


def size_settings(recipe):
    """The recipe's [sizes] section with defaults (m = 85 masks, n = 1 sample, as in the paper's section 4.1)."""
    settings = {**SIZE_DEFAULTS, **recipe.get("sizes", {})}
    unknown = sorted(set(settings) - set(SIZE_DEFAULTS))
    if unknown:
        raise KerasweakError(f"[sizes] has unknown keys {', '.join(unknown)}; known: {', '.join(SIZE_DEFAULTS)}", recipe["name"])
    for key in ("pixel_annotated", "num_samples", "finetune_epochs"):
        if not (isinstance(settings[key], int) and settings[key] >= 1):
            raise KerasweakError(f"[sizes] {key} must be an integer >= 1, got {settings[key]!r}", recipe["name"])
    return settings


def size_targets(patches, labelled, labelled_size_weight=0.0):
    """SizeSupervisedSegmenter targets: images at index `labelled` train on their masks (BCE), the rest on sizes only.

    The others' masks are replaced by zeros, so size supervision never sees them.
    `labelled_size_weight` = 1 also scores the labelled images' sizes (validation).
    """
    has_mask = np.zeros(len(patches), dtype=np.float32)
    has_mask[labelled] = 1.0
    masks = np.where(has_mask[:, None, None] > 0, patches.masks, 0).astype(np.float32)
    return {"mask": masks, "size": patches.sizes.astype(np.float32), "mask_weight": has_mask,
            "size_weight": np.where(has_mask > 0, labelled_size_weight, 1.0).astype(np.float32)}


def _train_sizes(*args, **kwargs):
    from .training import train_size_seed  # kerasweak.training imports this module

    return train_size_seed(*args, **kwargs)


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
    "sizes": Method(name="sizes", train=_train_sizes),
}


def get_method(name):
    try:
        return METHODS[name]
    except KeyError:
        raise KerasweakError(f"unknown method {name!r}; known: {', '.join(sorted(METHODS))}") from None
