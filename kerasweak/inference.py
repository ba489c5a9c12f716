"""Exported kerasweak models: write one (SavedModel plus kerasweak.json), load it, evaluate it (predict: kerasweak.prediction)."""

import json
from pathlib import Path

import numpy as np

from .data import DATASETS, find_dataset, get_dataset, read_patches, read_test_patches
from .errors import KerasweakError
from .evaluation import evaluate_patches, evaluate_whole_images
from .io import atomic_path
from .models import segmenter_of
from .precision import float32_copy
from .recipe import normalise_recipe
from .schema import multiple_of_8
from .serving import serving_fn

METADATA_KEYS = ("method", "recipe", "dataset", "class_names", "palette", "num_outputs", "channels")


def export_metadata(recipe, patches, model, class_bias=None, test_patches=None):
    """What `predict` and `evaluate` need to use an exported model on its own; `class_bias` if [evaluation] calibrate fitted one.

    `test_patches` (`test_set`) records the run's exact test patches for `evaluate`.
    """
    calibration = {} if class_bias is None else {"class_bias": list(class_bias)}
    return {**calibration, **(test_patches or {}), "method": recipe["method"], "recipe": recipe, "dataset": recipe["dataset"],
            "class_names": patches.class_names, "palette": np.asarray(patches.palette).tolist(),
            "num_outputs": int(segmenter_of(model).output_shape[-1]),
            "patch_size": recipe["data"]["patch_size"], "working_scale": working_scale(patches),
            "channels": int(patches.images.shape[-1]),
            "split": recipe["data"], "input": "raw pixel values 0-255, (batch, H, W, channels) of any H and W: float32 "
                                               "(signature serve) or uint8 (serve_uint8); output probabilities"}


def working_scale(patches):
    """{"longer_side": L, "patch": [H, W]} for whole images scaled into H×W patches (PatchSet.valid), else None.

    Such a model learnt its images at that scale, so `predict` and `evaluate`
    scale each image the same way (fitted into H×W, longer side L for a square
    patch), predict, and resize the class maps back (kerasweak.scaling).
    None: the model ran at native scale.
    """
    if patches.valid is None:
        return None
    shape = [int(side) for side in patches.valid.shape[1:3]]
    return {"longer_side": max(shape), "patch": shape}


def export_segmenter(model, path, metadata):
    """Export the segmenter as a self-describing SavedModel (kerasweak.serving) with kerasweak.json beside it, atomically.

    It computes in float32 whatever policy it trained in (precision.float32_copy).
    """
    from .serving import write_savedmodel

    with atomic_path(path) as tmp:
        write_savedmodel(float32_copy(segmenter_of(model)), tmp, metadata)
        (Path(tmp) / "kerasweak.json").write_text(json.dumps(metadata, indent=2))


def load_export(path):
    """(predict_fn, metadata) of a SavedModel written by a kerasweak recipe."""
    import tensorflow as tf

    path = Path(path)
    meta_path = path / "kerasweak.json"
    if not meta_path.is_file():
        raise KerasweakError("not a kerasweak model folder (no kerasweak.json)", path)
    try:
        metadata = json.loads(meta_path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise KerasweakError(f"kerasweak.json is not valid JSON ({err})", path) from None
    missing = [key for key in METADATA_KEYS if key not in metadata] if isinstance(metadata, dict) else list(METADATA_KEYS)
    if missing:
        raise KerasweakError(f"kerasweak.json lacks {', '.join(missing)}; export the model again with this kerasweak", path)
    try:
        loaded = tf.saved_model.load(str(path))
    except (OSError, ValueError) as err:
        raise KerasweakError(f"cannot load SavedModel ({err.__class__.__name__})", path) from None
    return serving_fn(loaded), metadata


def test_set(patches, test_idx, max_samples):
    """The run's test patches as kerasweak.json records them: --max-samples, their indices, and the image each was cut from."""
    return {"max_samples": max_samples, "test_patches": [int(i) for i in test_idx],
            "test_sources": [str(patches.sources[i]) for i in test_idx]}


def export_patches(metadata, recipe, model_path, data=None, split="test"):
    """The patches `evaluate` scores an export on: its recorded test patches (split "test"), or all ("all")."""
    max_samples = metadata.get("max_samples")
    if split == "test" and "test_patches" in metadata:
        return recorded_test_patches(metadata, read_patches(recipe, data, max_samples), model_path)
    return (read_test_patches if split == "test" else read_patches)(recipe, data, max_samples)


def recorded_test_patches(metadata, patches, model_path):
    """The test patches an export records (`test_set`), checked against the data read now; a KerasweakError if they differ."""
    index = metadata["test_patches"]
    now = [str(patches.sources[i]) if i < len(patches) else None for i in index]
    wrong = next((k for k, source in enumerate(now) if source != metadata["test_sources"][k]), None)
    if wrong is not None:
        raise KerasweakError(f"the data differ from the run's: its test patch {index[wrong]} was cut from "
                             f"{metadata['test_sources'][wrong]}, here from {now[wrong] or 'nothing'}", model_path)
    return patches.subset(np.asarray(index, dtype=int))


def evaluate_export(model_path, data=None, split="test", reflect_context=None):
    """Scores of an exported model on the run's test patches (or on all patches it read).

    An export that records its test patches (`test_set`) is scored on exactly
    those; an older one on its recipe's test split, recomputed. They include the E-measure and trimap mIoU when the recipe's [evaluation]
    section (kept in kerasweak.json) asks for them, as the run reported them, and
    "calibrated" scores when the export carries a class bias, and "flipped" ones when [evaluation] test_time_flips is on,
    "in_context" ones when [evaluation] reflect_context (or the `reflect_context` given, in pixels) is above 0.
    """
    predict_fn, metadata = load_export(model_path)
    if not get_dataset(metadata["dataset"], model_path).has_masks:
        scored = ", ".join(name for name, dataset in DATASETS.items() if dataset.has_masks)
        raise KerasweakError(f"model was trained on {metadata['dataset']} data, which has no masks to score it against; "
                             f"evaluate takes models trained on {scored}", model_path)
    recipe = metadata["recipe"]
    if reflect_context is not None:
        problem = multiple_of_8(reflect_context)
        if problem:
            raise KerasweakError(problem, "--reflect-context")
        recipe = {**recipe, "evaluation": {**recipe.get("evaluation", {}), "reflect_context": reflect_context}}
    recipe = normalise_recipe(recipe, model_path, stored=True)
    if metadata.get("working_scale"):
        return evaluate_at_working_scale(predict_fn, metadata, recipe, data, split)
    evaluation = recipe["evaluation"]
    patches = export_patches(metadata, recipe, model_path, data, split)
    return evaluate_patches(predict_fn, patches, e_measure=evaluation["e_measure"], trimap_widths=evaluation["trimap_widths"],
                            class_bias=metadata.get("class_bias"), test_time_flips=evaluation["test_time_flips"],
                            reflect_context=evaluation["reflect_context"])


def evaluate_at_working_scale(predict_fn, metadata, recipe, data, split):
    """evaluate_export for an export with a working scale: the test (or all) whole images of a folder with masks.

    The test images are those the export records, else the recipe's split by
    image; each is scored at every native pixel (evaluation.evaluate_whole_images).
    """
    from .data.folder import image_parts, read_labels
    from .data.folder_files import decode_image, decode_mask

    labels = read_labels(find_dataset(recipe["dataset"], data))
    if labels.masks is None:
        raise KerasweakError("no masks/ to score the model against; evaluate needs the images' masks", labels.root)
    if split == "all":
        names = list(labels.images)
    elif "test_sources" in metadata:
        names = list(dict.fromkeys(metadata["test_sources"]))
    else:
        names = [name for name, part in image_parts(labels, recipe["data"]).items() if part == "test"]
    missing = [name for name in names if name not in labels.images]
    if missing:
        raise KerasweakError(f"no image {missing[0]} here, a test image of the run", labels.root / "images")

    def pairs():
        for name in names:
            image = decode_image(labels.images[name], labels.spec.channels)
            yield image, decode_mask(labels.masks[name], labels.spec, image.shape[:2])

    return evaluate_whole_images(predict_fn, pairs(), metadata["class_names"], metadata["working_scale"],
                                 metadata.get("class_bias"))
