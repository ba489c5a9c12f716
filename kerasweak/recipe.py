"""Recipes: load one (a packaged name or a TOML path, `extends = "other"` inherits), check it against the schema, fill defaults.

A recipe is a small TOML file (see recipes/). Its top-level keys and its
sections [data], [model], [train], [evaluation], [degrade], [paper] and
[sweep] are declared here; each method declares its own sections and [train]
keys (kerasweak.methods). `load_recipe` returns the recipe normalised: every
section of its method present, every key filled with its default. An unknown
key or section, a wrong type or a value out of range is one KerasweakError
naming the recipe, the key and the problem.
"""

import tomllib
from importlib import resources
from pathlib import Path

from .data.augment import AUGMENTATIONS
from .data.degrade import DEGRADE_MODES
from .data.patching import check_patch_sides
from .data.registry import get_dataset
from .data.splits import SPLIT_RULES
from .errors import KerasweakError
from .methods import METHODS, get_method
from .models.unet import PADDINGS
from .schedules import LR_SCHEDULES
from .schema import (INT, NUMBER, Section, Setting, at_least, did_you_mean, fraction, list_of, multiple_of_8, multiple_of_16,
                     normalise_section, one_of, positive, unit_interval)

PACKAGE_RECIPES = "kerasweak.recipes"

TOP_LEVEL = {
    "name": Setting((str,), doc="the run's name; its default folder is runs/NAME"),
    "description": Setting((str,), "", doc="one line for `kerasweak recipes`"),
    "dataset": Setting((str,), doc="a registered dataset (kerasweak.data.registry)"),
    "method": Setting((str,), doc="a registered method (kerasweak.methods)"),
    "label": Setting((str,), None, doc="the row label in results tables (default: name)"),
    "notes": Setting((str,), None, doc="a paragraph under the results table"),
}

DATA = Section({
    "patch_size": Setting((int, list), 224, multiple_of_16, "patch side, or [height, width], in pixels"),
    "test_fraction": Setting(NUMBER, 0.2, fraction, "share of patches held out for the test scores"),
    "val_fraction": Setting(NUMBER, 0.1, fraction, "share of the rest used for validation (EarlyStopping)"),
    "split_seed": Setting(INT, 0, at_least(0), "seed of the split"),
    "split": Setting((str,), "patch", one_of(*SPLIT_RULES),
                     "patch (the papers'), image, block or volume (data.splits); a generic folder: image"),
    "block_gap": Setting(INT, 1, at_least(0), "split = block: slices left out where a training block meets a held-out one"),
    "train_patches": Setting(INT, None, at_least(1), "train on a seeded random N of the training patches (a learning "
                                                     "curve; nested as N grows); validation and test unchanged"),
})

MODEL = Section({
    "base_filters": Setting(INT, 16, at_least(1), "U-Net filters at the first level, doubling per level"),
    "padding": Setting((str,), "zeros", one_of(*PADDINGS),
                       "3×3 convolutions pad with zeros (the paper) or mirror the image (no edge stripe to exploit)"),
})

TRAIN = {
    "optimizer": Setting((str,), "adam", one_of("adam", "adamw", "sgd"), "adam, adamw, or sgd with `momentum`"),
    "momentum": Setting(NUMBER, 0.9, unit_interval, "SGD momentum (optimizer = sgd only)"),
    "learning_rate": Setting(NUMBER, 1e-3, positive, "peak learning rate"),
    "lr_schedule": Setting((str,), "constant", one_of(*LR_SCHEDULES),
                           "constant, cosine, warmup-cosine or one-cycle over the planned steps (kerasweak.schedules)"),
    "warmup_epochs": Setting(INT, 1, at_least(0), "lr_schedule = warmup-cosine: epochs of linear warm-up from 0"),
    "batch_size": Setting(INT, 16, at_least(1), "patches per step (the global batch under a distribution strategy)"),
    "epochs": Setting(INT, 100, at_least(1), "maximum epochs"),
    "patience": Setting(INT, 10, at_least(1), "EarlyStopping patience on the validation figure, in validations"),
    "validation_every": Setting(INT, 1, at_least(1), "validate on the first epoch, every k-th after it and the last"),
    "mixed_precision": Setting((bool,), False, doc="mixed_bfloat16 where the CPU has bfloat16 instructions or on a GPU, else float32 (kerasweak.precision)"),
    "augment": Setting((list,), [], list_of((str,), one_of(*AUGMENTATIONS)), "label-exact augmentations"),
    "mosaic": Setting(INT, 1, at_least(1), "k: train on k×k mosaics of patches (method spss: keeps proportions exact)"),
}  # each method adds its own [train] keys (Method.train_settings)

EVALUATION = Section({
    "e_measure": Setting((bool,), False, doc="E-measure per class (SEMEDA Tables 2-3)"),
    "trimap_widths": Setting((list,), [], list_of(INT, at_least(1)), "band widths in pixels for trimap mIoU"),
    "calibrate": Setting((bool,), False, doc="also score with a class bias fitted to the validation proportions"),
    "test_time_flips": Setting((bool,), False, doc="also score the mean of each patch's 8 flips/rotations (4 if not square)"),
    "reflect_context": Setting(INT, 0, multiple_of_8, "also score each patch predicted reflect-padded by this many pixels"),
}, fingerprint=False)

DEGRADE = Section({
    "clusters": Setting(INT, None, at_least(1), "K-means clusters: each patch gets its cluster member's proportions"),
    "noise": Setting(NUMBER, None, at_least(0), "σ in percent of eq. 5's noise (0 still renormalises)"),
    "mode": Setting((str,), "softmax", one_of(*DEGRADE_MODES), "renormalisation after noise"),
    "seed": Setting(INT, 0, at_least(0), "fixes the degradation, the same for every training seed"),
})

PAPER = Section(fingerprint=False, free_form=True, doc="the paper's row: label, miou, f1 = {class = text}, accuracy")

SWEEP_PLOTS = ("miou", "size_iou", "epoch_seconds", "finetune_curves")
SWEEP = Section({
    "parameter": Setting((str,), None, doc="'section.key' swept; without it each value is a labelled table of overrides"),
    "values": Setting((list,), doc="the swept values, or tables {label = …, section.key = …}"),
    "seeds": Setting((list,), None, list_of(INT, at_least(1)), "minimum seeds per value"),
    "plots": Setting((list,), ["miou"], list_of((str,), one_of(*SWEEP_PLOTS)), "figures, the first is sweep.png"),
    "heading": Setting((str,), None, doc="the table's first heading (default: the key)"),
    "paper_miou": Setting((dict,), {}, doc="the paper's mIoU by value, quoted beside ours"),
})

SECTIONS = {"data": DATA, "model": MODEL, "evaluation": EVALUATION, "degrade": DEGRADE, "paper": PAPER, "sweep": SWEEP}


def method_sections():
    """{section: names of the methods that declare it} ([keypoints], [sizes], [semeda], [sobel])."""
    owners = {}
    for method in METHODS.values():
        for section in method.sections:
            owners.setdefault(section, []).append(method.name)
    return owners


def train_section(method):
    """The [train] Section of a method: the shared keys plus the method's own."""
    return Section({**TRAIN, **method.train_settings})


def recipe_sections(method):
    """Every Section a recipe of `method` may have, by name."""
    return {**SECTIONS, "train": train_section(method), **method.sections}


def _train_key_owner(key):
    """The method that declares [train] `key`, or None."""
    return next((m.name for m in METHODS.values() if key in m.train_settings), None)


def _check_foreign(recipe, method, name):
    """A section or [train] key that belongs to another method is named as such."""
    for section, owners in method_sections().items():
        if section in recipe and method.name not in owners:
            raise KerasweakError(f"[{section}] is a section of method {' and '.join(owners)}, not of {method.name}", name)
    for key in recipe.get("train", {}) if isinstance(recipe.get("train"), dict) else ():
        owner = _train_key_owner(key)
        if owner and key not in TRAIN and key not in method.train_settings:
            raise KerasweakError(f"[train] {key} is a setting of method {owner}, not of {method.name}", name)


def normalise_recipe(recipe, where=None, stored=False):
    """`recipe` (a dict as read from TOML, `extends` resolved) checked and with every default filled in.

    `where` names it in errors (its file); default its `name`. `stored`: a recipe
    a run recorded (config.json, kerasweak.json); [train] keys of other methods are
    dropped from it, since the kerasweak that wrote it accepted and ignored them
    (e.g. `loss` inherited by a pixel recipe from an spss one).
    """
    if not isinstance(recipe, dict):
        raise KerasweakError("a recipe must be a table", where)
    where = where or recipe.get("name", "recipe")
    if stored and isinstance(recipe.get("train"), dict) and recipe.get("method") in METHODS:
        own = {**TRAIN, **METHODS[recipe["method"]].train_settings}
        recipe = {**recipe, "train": {k: v for k, v in recipe["train"].items() if k in own or not _train_key_owner(k)}}
    for key in ("name", "dataset", "method"):
        if key not in recipe:
            raise KerasweakError(f"{key}: missing (every recipe names its {key})", where)
    method = get_method(recipe["method"], where)
    get_dataset(recipe["dataset"], where)
    sections = recipe_sections(method)
    known = [*TOP_LEVEL, *sections, *method_sections()]
    for key in recipe:
        if key not in known:
            kind = "section" if isinstance(recipe[key], dict) else "key"
            raise KerasweakError(f"{key}: unknown {kind}{did_you_mean(key, known)}; known: {', '.join(known)}", where)
    _check_foreign(recipe, method, where)
    recipe = _folder_split(recipe, where, stored)
    normalised = normalise_section("recipe", Section(TOP_LEVEL), {k: v for k, v in recipe.items() if k in TOP_LEVEL}, where)
    for name, section in sections.items():
        if name != "sweep" or "sweep" in recipe:
            normalised[name] = normalise_section(name, section, recipe.get(name), where)
    data = normalised["data"]
    if data["test_fraction"] + data["val_fraction"] >= 1:
        raise KerasweakError(f"[data] test_fraction + val_fraction must be < 1, got {data['test_fraction']} + "
                             f"{data['val_fraction']}", where)
    if normalised["model"]["padding"] == "reflect":
        check_patch_sides(data["patch_size"], '[model] padding = "reflect"', "the U-Net's bottleneck mirrors 2 pixels",
                          where, at_least=32)
    method.check(normalised, where)
    return normalised


def _folder_split(recipe, where, stored):
    """A generic folder splits by image (its split.csv, or a seeded split of its images), so its [data] split is "image".

    Runs before this recorded the unused default "patch"; a stored recipe is read as "image".
    """
    data = recipe.get("data", {})
    if recipe["dataset"] != "folder" or not isinstance(data, dict):
        return recipe
    given = data.get("split", "image")
    if given != "image" and not stored:
        raise KerasweakError(f"[data] split = {given!r}: a generic folder is split by image (its split.csv, or a "
                             "seeded split of its images); leave split out or set it to \"image\"", where)
    return {**recipe, "data": {**data, "split": "image"}}


def fingerprint(recipe):
    """The parts of a normalised recipe that change its results: dataset, method and the sections marked `fingerprint`."""
    method = get_method(recipe["method"])
    return {"dataset": recipe["dataset"], "method": recipe["method"],
            **{name: recipe[name] for name, section in recipe_sections(method).items() if section.fingerprint and name in recipe}}


def merge(base, override):
    """`base` with `override`'s keys replacing its own, tables merged key by key."""
    merged = dict(base)
    for key, value in override.items():
        merged[key] = merge(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict) else value
    return merged


def with_overrides(recipe, overrides):
    """A normalised recipe with `overrides` ({section: {key: value}}, or top-level keys) applied and checked again."""
    return normalise_recipe(merge(recipe, overrides))


def recipe_files():
    """{name: path} of the packaged recipes."""
    return {p.name[:-5]: p for p in resources.files(PACKAGE_RECIPES).iterdir() if p.name.endswith(".toml")}


def list_recipes():
    """(name, description) of every packaged recipe."""
    return [(name, load_recipe(name)["description"]) for name in sorted(recipe_files())]


def read_recipe(name_or_path, chain=()):
    """The raw recipe dict of a packaged name or TOML path, `extends` merged in (not yet checked)."""
    files = recipe_files()
    path = files.get(name_or_path) or Path(name_or_path)
    if not path.is_file():
        raise KerasweakError(f"unknown recipe; known: {', '.join(sorted(files))}", name_or_path)
    try:
        recipe = tomllib.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as err:
        raise KerasweakError(f"not UTF-8 text (byte {err.start})", path) from None
    except tomllib.TOMLDecodeError as err:
        raise KerasweakError(f"invalid TOML ({err})", path) from None
    if "extends" in recipe:
        parent = recipe.pop("extends")
        if not isinstance(parent, str):
            raise KerasweakError(f"extends must be a recipe name or path, got {parent!r}", path)
        if parent in chain or parent == name_or_path or files.get(parent) == path:
            raise KerasweakError(f"extends {parent!r}, which extends it back (a cycle)", path)
        recipe = merge(read_recipe(parent, (*chain, name_or_path)), recipe)
    return recipe


def load_recipe(name_or_path):
    """The normalised recipe of a packaged name or a TOML path."""
    files = recipe_files()
    where = files.get(name_or_path) or name_or_path
    return normalise_recipe(read_recipe(name_or_path), where=Path(where).name if name_or_path in files else where)
