"""Method registry: what a recipe's `method` key means.

A method says how to build the training model around the shared U-Net, which
labels of a PatchSet it trains on, and which loss (and loss weights) it uses,
each read from the recipe. The object-size method trains in two stages
(`kerasweak.training.train_size_seed`); its recipe settings and targets are here.
The SEMEDA method first trains (or loads) its frozen edge network g_φ, cached in
the run's OUT folder, then trains like "pixel" with SemedaLoss.
The SPSS method optionally adds a mask-free smoothness prior to its model and
self-training rounds after its fit (`spss_settings`, `kerasweak.training.train_spss_seed`).
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import keras
import numpy as np

from . import losses
from .data import keypoint_arrays, sample_keypoints
from .errors import KerasweakError
from .layers import SemedaNet
from .models import build_spss, build_spss_plus, build_unet, load_or_train_semeda


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


def proportion_loss(recipe):
    """ProportionLoss of the recipe's [train] loss: "mse" (the paper's eq. 1), "kl" or "mse+kl"."""
    form = recipe["train"].get("loss", "mse")
    if form not in losses.PROPORTION_FORMS:
        raise KerasweakError(f"[train] loss must be one of {', '.join(losses.PROPORTION_FORMS)}, got {form!r}", recipe["name"])
    return losses.ProportionLoss(form=form)


def section_settings(recipe, section, defaults):
    """The recipe's [section] with `defaults` filled in; a key not in `defaults` is a one-line error."""
    settings = {**defaults, **recipe.get(section, {})}
    unknown = sorted(set(settings) - set(defaults))
    if unknown:
        raise KerasweakError(f"[{section}] has unknown keys {', '.join(unknown)}; known: {', '.join(defaults)}", recipe["name"])
    return settings


KEYPOINT_DEFAULTS = {"k": 3, "radius": 0, "classes": None, "fraction_of_images": 1.0, "alpha": 0.5, "seed": 0}


def keypoint_settings(recipe):
    """The recipe's [keypoints] section with defaults; unknown keys, α outside [0, 1] and a bad k are errors.

    k is the points per class, or a table of them by class name ({Background = 30, Mitochondria = 10}).
    """
    settings = section_settings(recipe, "keypoints", KEYPOINT_DEFAULTS)
    if not 0 <= settings["alpha"] <= 1:
        raise KerasweakError(f"[keypoints] alpha must be between 0 and 1, got {settings['alpha']}", recipe["name"])
    k = settings["k"]
    counts = k.values() if isinstance(k, dict) else [k]
    if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in counts) or not any(counts):
        raise KerasweakError(f"[keypoints] k must be an integer >= 1 or a table of integers >= 0 by class name, got {k!r}",
                             recipe["name"])
    return settings


def _class_indices(names, patches, key, recipe):
    """Indices in patches.class_names of the class names a [keypoints] `key` lists; an unknown name is a one-line error."""
    unknown = [c for c in names if c not in patches.class_names]
    if unknown:
        raise KerasweakError(f"[keypoints] {key}: unknown {', '.join(unknown)}; known: {', '.join(patches.class_names)}", recipe["name"])
    return [patches.class_names.index(c) for c in names]


def _keypoint_targets(patches, recipe):
    """Proportions plus keypoints (paper eq. 4's two targets): the user's (PatchSet.keypoints), else sampled from the masks."""
    if patches.keypoints is not None:
        keypoints = keypoint_arrays(patches.keypoints, patches.images.shape[1:3], patches.proportions.shape[1])
        return {"proportions": patches.proportions, "class_maps": losses.pack_keypoints(*keypoints)}
    s = keypoint_settings(recipe)
    classes = None if s["classes"] is None else _class_indices(s["classes"], patches, "classes", recipe)
    k = s["k"]
    if isinstance(k, dict):
        k = dict(zip(_class_indices(k, patches, "k", recipe), k.values()))
    keypoints = sample_keypoints(patches.masks, patches.proportions.shape[1], k, radius=s["radius"], classes=classes,
                                 fraction_of_images=s["fraction_of_images"], seed=s["seed"])
    return {"proportions": patches.proportions, "class_maps": losses.pack_keypoints(*keypoints)}


SIZE_DEFAULTS = {"pixel_annotated": 85, "num_samples": 1, "augment": True, "finetune_learning_rate": 1e-4,
                 "finetune_epochs": 40, "finetune_patience": 5}


def size_settings(recipe):
    """The recipe's [sizes] section with defaults (m = 85 masks, n = 1 sample, as in the paper's section 4.1)."""
    settings = section_settings(recipe, "sizes", SIZE_DEFAULTS)
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


SEMEDA_DEFAULTS = {"lambdas": list(losses.SEMEDA_LAMBDAS), "edge_epochs": 10, "edge_batch_size": 16,
                   "edge_learning_rate": 5e-4, "edge_seed": 0}
SOBEL_DEFAULTS = {"weight": losses.SOBEL_LAMBDA}


def _non_negative(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0


SPSS_DEFAULTS = {"smoothness": 0.0, "smoothness_sigma": 15.0, "self_train_rounds": 0, "self_train_confidence": 0.9}


def spss_settings(recipe):
    """The [train] options of method spss beyond the paper, with defaults, checked.

    smoothness: weight of the edge-aware smoothness prior (0 = off), smoothness_sigma:
    its σ in 0-255 pixel units (layers.EdgeAwareSmoothness); self_train_rounds (0 = off),
    self_train_confidence (pseudo-mask threshold) and self_train_epochs (default:
    [train] epochs) set the self-training rounds after the SPSS stage
    (training.self_train_round).
    """
    cfg = recipe["train"]
    settings = {**SPSS_DEFAULTS, "self_train_epochs": cfg["epochs"],
                **{key: cfg[key] for key in (*SPSS_DEFAULTS, "self_train_epochs") if key in cfg}}
    if not _non_negative(settings["smoothness"]):
        raise KerasweakError(f"[train] smoothness must be a number >= 0, got {settings['smoothness']!r}", recipe["name"])
    if not (_non_negative(settings["smoothness_sigma"]) and settings["smoothness_sigma"] > 0):
        raise KerasweakError(f"[train] smoothness_sigma must be a number > 0, got {settings['smoothness_sigma']!r}", recipe["name"])
    for key, low in (("self_train_rounds", 0), ("self_train_epochs", 1)):
        if not (isinstance(settings[key], int) and not isinstance(settings[key], bool) and settings[key] >= low):
            raise KerasweakError(f"[train] {key} must be an integer >= {low}, got {settings[key]!r}", recipe["name"])
    if not (_non_negative(settings["self_train_confidence"]) and settings["self_train_confidence"] <= 1):
        raise KerasweakError(f"[train] self_train_confidence must be between 0 and 1, got {settings['self_train_confidence']!r}",
                             recipe["name"])
    if (settings["smoothness"] or settings["self_train_rounds"]) and recipe["method"] != "spss":
        raise KerasweakError(f"[train] smoothness and self_train_rounds need method spss, not {recipe['method']}", recipe["name"])
    return settings


def smoothness_prior(recipe):
    """build_spss's `smoothness` argument ({"weight", "sigma"}) from [train] smoothness, or None when it is 0."""
    settings = spss_settings(recipe)
    return {"weight": settings["smoothness"], "sigma": settings["smoothness_sigma"]} if settings["smoothness"] else None


def semeda_settings(recipe):
    """The recipe's [semeda] section: λ_1..λ_3 of eq. 6 (default 4, 2, 0) and how g_φ is trained (paper: Adam 5e-4)."""
    settings = section_settings(recipe, "semeda", SEMEDA_DEFAULTS)
    lambdas = settings["lambdas"]
    if not (isinstance(lambdas, list) and len(lambdas) == len(SemedaNet.WIDTHS) and all(map(_non_negative, lambdas))):
        raise KerasweakError(f"[semeda] lambdas must be {len(SemedaNet.WIDTHS)} numbers >= 0, one per SemedaNet layer, "
                             f"got {lambdas!r}", recipe["name"])
    for key in ("edge_epochs", "edge_batch_size"):
        if not (isinstance(settings[key], int) and settings[key] >= 1):
            raise KerasweakError(f"[semeda] {key} must be an integer >= 1, got {settings[key]!r}", recipe["name"])
    return settings


def sobel_settings(recipe):
    """The recipe's [sobel] section: `weight`, the λ of the Sobel baseline (default 4, Table 1's best)."""
    settings = section_settings(recipe, "sobel", SOBEL_DEFAULTS)
    if not _non_negative(settings["weight"]):
        raise KerasweakError(f"[sobel] weight must be a number >= 0, got {settings['weight']!r}", recipe["name"])
    return settings


def _mask_targets(patches, recipe):
    return patches.masks.astype(np.int32)


def semeda_edge_net(recipe, train, cache_dir, verbose=0):
    """The frozen g_φ of a run: CACHE_DIR/semeda-DATASET-<C>classes.keras, trained on `train`'s masks if absent.

    The "semeda" method passes the run's OUT folder (the seed folder's parent), so every seed shares one g_φ
    trained with the run's [semeda] settings (part of OUT's config). A one-sigmoid
    segmenter gets a two-class g_φ (SemedaLoss feeds it [1 - p, p]). `verbose` is
    Keras's, for g_φ's own training: its progress bar shows before the segmenter's.
    """
    s = semeda_settings(recipe)
    keras.utils.set_random_seed(s["edge_seed"])
    return load_or_train_semeda(cache_dir, recipe["dataset"], max(2, train.proportions.shape[1]), train.masks,
                                epochs=s["edge_epochs"], batch_size=s["edge_batch_size"],
                                learning_rate=s["edge_learning_rate"], seed=s["edge_seed"], verbose=verbose)


def _train_semeda(recipe, train, val, seed, seed_dir, verbose="auto", evaluate=None):
    """train_seed, with the run's g_φ handed to the "semeda" loss as recipe["edge_net"]."""
    from .training import train_seed

    edge_net = semeda_edge_net(recipe, train, Path(seed_dir).parent, verbose)
    return train_seed({**recipe, "edge_net": edge_net}, train, val, seed, seed_dir, verbose, evaluate)


def _train_sizes(*args, **kwargs):
    from .training import train_size_seed  # kerasweak.training imports this module

    return train_size_seed(*args, **kwargs)


def _train_spss(*args, **kwargs):
    from .training import train_spss_seed

    return train_spss_seed(*args, **kwargs)


METHODS = {
    "spss": Method(
        name="spss",
        build=lambda c, cfg: build_spss(_unet(c, cfg), smoothness=cfg.get("smoothness")),
        targets=lambda patches, recipe: patches.proportions,
        loss=proportion_loss,
        train=_train_spss,
    ),
    "spss_plus": Method(
        name="spss_plus",
        build=lambda c, cfg: build_spss_plus(_unet(c, cfg)),
        targets=_keypoint_targets,
        loss=lambda recipe: {"proportions": proportion_loss(recipe), "class_maps": losses.KeypointLoss()},
        loss_weights=lambda recipe: {"proportions": keypoint_settings(recipe)["alpha"],
                                     "class_maps": 1.0 - keypoint_settings(recipe)["alpha"]},
    ),
    "pixel": Method(
        name="pixel",
        build=_unet,
        targets=_mask_targets,
        loss=lambda recipe: losses.PixelCrossEntropy(),
    ),
    "semeda": Method(
        name="semeda",
        build=_unet,
        targets=_mask_targets,
        loss=lambda recipe: losses.SemedaLoss(recipe["edge_net"], lambdas=semeda_settings(recipe)["lambdas"]),
        train=_train_semeda,
    ),
    "sobel": Method(
        name="sobel",
        build=_unet,
        targets=_mask_targets,
        loss=lambda recipe: losses.SobelEdgeLoss(sobel_settings(recipe)["weight"]),
    ),
    "sizes": Method(name="sizes", train=_train_sizes),
}


def get_method(name):
    try:
        return METHODS[name]
    except KeyError:
        raise KerasweakError(f"unknown method {name!r}; known: {', '.join(sorted(METHODS))}") from None
