"""The dataset registry: each dataset declared once (reader, how its folder is recognised, classes, how to get it).

A recipe's `dataset` names an entry; `read_dataset` finds its folder (--data,
then $KERASWEAK_DATA, then ../shared/data beside the checkout) and calls its
reader with the recipe's [data] section. Adding a dataset is one `Dataset`
entry in DATASETS.
"""

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import KerasweakError
from .dataset import split_indices, split_of
from .dubai import DUBAI_CLASSES, DUBAI_PALETTE, read_dubai
from .epfl import EPFL_CLASSES, EPFL_PALETTE, read_epfl
from .folder import read_folder_dataset
from .hippocampus import HIPPOCAMPUS_CLASSES, HIPPOCAMPUS_PALETTE, read_hippocampus
from .proportions import read_proportions_dataset
from .splits import split_patches


@dataclass(frozen=True)
class Dataset:
    """One dataset: `read(root, data_settings, max_samples) -> PatchSet`, and where its files are recognised.

    markers: a file or folder whose presence marks the dataset's root; subfolders:
    where below a data folder the root may sit. class_names and palette are None
    where they come from the files (a proportions CSV's header).
    """

    name: str
    read: Callable
    markers: tuple = ()
    subfolders: tuple = ()
    how_to_get: str = ""
    class_names: tuple | None = None
    palette: tuple | None = None
    has_masks: bool = True  # False: nothing to score a model against (evaluate refuses)


def _patches_of(reader):
    """A reader taking (root, patch_size=, max_samples=) as one taking (root, [data] settings, max_samples)."""
    return lambda root, data, max_samples=None: reader(root, patch_size=data["patch_size"], max_samples=max_samples)


def _read_proportions_csv(csv_path, data, max_samples=None):
    patches = read_proportions_dataset(csv_path, patch_size=data["patch_size"])
    return patches if max_samples is None else patches.subset(range(min(max_samples, len(patches))))


DATASETS = {dataset.name: dataset for dataset in (
    Dataset("aerial-dubai", _patches_of(read_dubai), ("Tile 1",), ("aerial-dubai", "Semantic segmentation dataset"),
            "download the Kaggle dataset humansintheloop/semantic-segmentation-of-aerial-imagery "
            "and pass --data to the folder holding 'Tile 1' … 'Tile 8' (each with images/ and masks/)",
            tuple(DUBAI_CLASSES), tuple(map(tuple, DUBAI_PALETTE.tolist()))),
    Dataset("epfl-em", _patches_of(read_epfl), ("Train_In", "training.tif"), ("epfl-em", "dataset/Lucchi++", "Lucchi++"),
            "get the EPFL CVLab electron microscopy data (Lucchi++ PNGs in Train_In/ and Train_Out/, "
            "or EPFL's training.tif and training_groundtruth.tif) and pass --data to their folder",
            tuple(EPFL_CLASSES), tuple(map(tuple, EPFL_PALETTE.tolist()))),
    Dataset("hippocampus", _patches_of(read_hippocampus), ("labelsTr",), ("hippocampus", "Task04_Hippocampus"),
            "download Task04_Hippocampus of the Medical Segmentation Decathlon (medicaldecathlon.com) "
            "and pass --data to the folder holding imagesTr/ and labelsTr/",
            tuple(HIPPOCAMPUS_CLASSES), tuple(map(tuple, HIPPOCAMPUS_PALETTE.tolist()))),
    Dataset("folder", read_folder_dataset, ("dataset.toml",),
            how_to_get="pass --data to a generic dataset folder: dataset.toml naming the classes, images/, and masks/ "
                       "or label CSVs (docs/data.md; `kerasweak check-data DIR` checks one)"),
    Dataset("proportions-csv", _read_proportions_csv,
            how_to_get="give a CSV 'image,<class 1>,…' to `kerasweak train-proportions` (it is not found in a folder)",
            has_masks=False),
)}


def get_dataset(name, where=None):
    """The registered Dataset `name`; an unknown name is a one-line error listing the known ones."""
    try:
        return DATASETS[name]
    except (KeyError, TypeError):
        raise KerasweakError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}", where) from None


def _marked(folder, spec):
    return any((folder / marker).exists() for marker in spec.markers)


def _resolve(candidate, spec):
    candidate = Path(candidate)
    if _marked(candidate, spec):
        return candidate
    for sub in spec.subfolders:
        found = _resolve_direct(candidate / sub, spec)
        if found:
            return found
    return None


def _resolve_direct(candidate, spec):
    if _marked(candidate, spec):
        return candidate
    for sub in spec.subfolders:
        if _marked(candidate / sub, spec):
            return candidate / sub
    return None


def default_locations():
    """Where datasets are looked for without --data: $KERASWEAK_DATA, then ../shared/data beside the working or package folder."""
    here = Path(__file__).resolve()
    beside = [Path.cwd().parent / "shared" / "data", here.parents[2].parent / "shared" / "data"]
    env = os.environ.get("KERASWEAK_DATA")
    return ([Path(env)] if env else []) + beside


def find_dataset(name, data=None):
    """Return the dataset's root folder, or raise a KerasweakError saying where to get it."""
    spec = get_dataset(name)
    if data is not None:
        if not Path(data).exists():
            raise KerasweakError("data folder does not exist", data)
        found = _resolve(data, spec)
        if found is None:
            raise KerasweakError(f"no {name} data here; {spec.how_to_get}", data)
        return found
    for candidate in default_locations():
        found = _resolve(candidate, spec)
        if found is not None:
            return found
    raise KerasweakError(f"{name} data not found (looked in --data, $KERASWEAK_DATA, ../shared/data); {spec.how_to_get}")


def read_dataset(name, data_settings, data=None, max_samples=None):
    """The PatchSet of dataset `name`, found from `data` (see find_dataset), read with the recipe's [data] section."""
    return get_dataset(name).read(find_dataset(name, data), data_settings, max_samples)


def read_patches(recipe, data=None, max_samples=None):
    """The PatchSet of a (normalised) recipe's dataset, read with its [data] section."""
    return read_dataset(recipe["dataset"], recipe["data"], data, max_samples)


def recipe_split(recipe, patches):
    """(train, validation, test) indices of a recipe's split of `patches` (a PatchSet, or a number of patches).

    A PatchSet that carries its own split (PatchSet.split: a generic folder's,
    by image) keeps it; otherwise the patches are split by the recipe's [data]
    split rule (kerasweak.data.splits), fractions and seed.
    """
    data = recipe["data"]
    if getattr(patches, "split", None) is not None:
        train, val, test = split_of(patches.split)
    elif isinstance(patches, int):  # a number of patches: the papers' random split
        train, val, test = split_indices(patches, data["test_fraction"], data["val_fraction"], data["split_seed"])
    else:
        train, val, test = split_patches(patches.sources, data["split"], data["test_fraction"], data["val_fraction"],
                                         data["split_seed"], gap=data["block_gap"])
    return training_subset(train, data), val, test


def training_subset(train, data):
    """[data] train_patches = N: a random N of the training indices, seeded by split_seed, in index order.

    The same permutation serves every N, so smaller subsets are nested in larger
    ones (a learning curve adds patches rather than redraws them); N at or above
    the training part's size keeps it whole.
    """
    count = data["train_patches"]
    if count is None or count >= len(train):
        return train
    return np.sort(np.random.default_rng(data["split_seed"]).permutation(np.asarray(train))[:count])


def read_test_patches(recipe, data=None, max_samples=None):
    """The test patches of the recipe's split, as a run with these options scored them."""
    patches = read_patches(recipe, data, max_samples)
    return patches.subset(recipe_split(recipe, patches)[2])
