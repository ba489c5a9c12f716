"""Find a dataset: --data, then $KERASWEAK_DATA, then ../shared/data beside the checkout."""

import os
from pathlib import Path

from ..errors import KerasweakError

DATASETS = {
    "aerial-dubai": {
        "markers": ["Tile 1"],
        "subfolders": ["aerial-dubai", "Semantic segmentation dataset"],
        "how_to_get": "download the Kaggle dataset humansintheloop/semantic-segmentation-of-aerial-imagery "
                      "and pass --data to the folder holding 'Tile 1' … 'Tile 8' (each with images/ and masks/)",
    },
    "epfl-em": {
        "markers": ["Train_In", "training.tif"],
        "subfolders": ["epfl-em", "dataset/Lucchi++", "Lucchi++"],
        "how_to_get": "get the EPFL CVLab electron microscopy data (Lucchi++ PNGs in Train_In/ and Train_Out/, "
                      "or EPFL's training.tif and training_groundtruth.tif) and pass --data to their folder",
    },
    "hippocampus": {
        "markers": ["labelsTr"],
        "subfolders": ["hippocampus", "Task04_Hippocampus"],
        "how_to_get": "download Task04_Hippocampus of the Medical Segmentation Decathlon (medicaldecathlon.com) "
                      "and pass --data to the folder holding imagesTr/ and labelsTr/",
    },
}


def _marked(folder, spec):
    return any((folder / marker).exists() for marker in spec["markers"])


def _resolve(candidate, spec):
    candidate = Path(candidate)
    if _marked(candidate, spec):
        return candidate
    for sub in spec["subfolders"]:
        found = _resolve_direct(candidate / sub, spec)
        if found:
            return found
    return None


def _resolve_direct(candidate, spec):
    if _marked(candidate, spec):
        return candidate
    for sub in spec["subfolders"]:
        if _marked(candidate / sub, spec):
            return candidate / sub
    return None


def default_locations():
    here = Path(__file__).resolve()
    beside = [Path.cwd().parent / "shared" / "data", here.parents[2].parent / "shared" / "data"]
    env = os.environ.get("KERASWEAK_DATA")
    return ([Path(env)] if env else []) + beside


def find_dataset(name, data=None):
    """Return the dataset's root folder, or raise a KerasweakError saying where to get it."""
    spec = DATASETS[name]
    if data is not None:
        if not Path(data).exists():
            raise KerasweakError("data folder does not exist", data)
        found = _resolve(data, spec)
        if found is None:
            raise KerasweakError(f"no {name} data here; {spec['how_to_get']}", data)
        return found
    for candidate in default_locations():
        found = _resolve(candidate, spec)
        if found is not None:
            return found
    raise KerasweakError(f"{name} data not found (looked in --data, $KERASWEAK_DATA, ../shared/data); {spec['how_to_get']}")
