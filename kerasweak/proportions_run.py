"""Train SPSS from a user's proportions CSV (no masks at all) and export the segmenter: `kerasweak train-proportions`."""

from pathlib import Path

from .data import read_proportions_dataset, split_indices
from .errors import KerasweakError
from .inference import export_metadata, export_segmenter
from .io import check_writable, write_json
from .methods import get_method
from .recipe import load_recipe, merge, normalise_recipe
from .training import csv_column


def train_from_proportions_csv(csv_path, out, recipe="dubai-spss", epochs=None, channels=3, seed=0, verbose="auto", echo=print):
    """Train SPSS from CSV_PATH (image,<class 1>,...) with the model and protocol of `recipe`; export OUT/model.

    A `val_fraction` of the images serves EarlyStopping. With no masks there is
    nothing to score segmentations against, so results.json reports the
    training run, not IoU.
    """
    recipe = load_recipe(recipe) if isinstance(recipe, str) else recipe
    overrides = {"method": "spss", "dataset": "proportions-csv", "data": {"test_fraction": 0.0}}
    recipe = normalise_recipe(merge(recipe, {**overrides, **({"train": {"epochs": epochs}} if epochs else {})}))
    out = Path(out)
    check_writable(out)
    patches = read_proportions_dataset(csv_path, patch_size=recipe["data"]["patch_size"], channels=channels)
    train_idx, val_idx, _ = split_indices(len(patches), 0.0, recipe["data"]["val_fraction"], recipe["data"]["split_seed"])
    if len(val_idx) == 0 or len(train_idx) == 0:
        raise KerasweakError(f"{len(patches)} images are too few to hold out a validation part", csv_path)
    echo(f"{csv_path}: {len(patches)} images -> train {len(train_idx)}, val {len(val_idx)}")
    seed_dir = out / f"seed_{seed}"
    seed_dir.mkdir(parents=True, exist_ok=True)
    model, seconds, extra = get_method("spss").train(recipe, patches.subset(train_idx), patches.subset(val_idx), seed,
                                                     seed_dir, verbose)
    export_segmenter(model, out / "model", export_metadata(recipe, patches, model))
    results = {"recipe": recipe["name"], "proportions_csv": str(csv_path), "images": len(patches),
               "best_val_loss": min(csv_column(seed_dir / "log.csv", "val_loss")),
               "train_seconds": seconds, "epochs": int(extra["epochs"]), "config": recipe}
    write_json(out / "results.json", results)
    return results
