"""Train SPSS from a user's proportions CSV (no masks at all) and export the segmenter: `kerasweak train-proportions`."""

import hashlib
from pathlib import Path

from .data import read_proportions_dataset, split_indices
from .errors import KerasweakError
from .inference import export_metadata, export_segmenter
from .figures import loss_figure
from .io import check_writable, csv_column, write_json
from .methods import get_method
from .recipe import load_recipe, merge, normalise_recipe
from .run_folder import check_same_config


def train_from_proportions_csv(csv_path, out, recipe="dubai-spss", epochs=None, channels=3, seed=0, verbose="auto", echo=print):
    """Train SPSS from CSV_PATH (image,<class 1>,...) with the model and protocol of `recipe`; export OUT/model.

    A `val_fraction` of the images serves EarlyStopping. With no masks there is
    nothing to score segmentations against, so results.json reports the
    training run, not IoU, and OUT/loss.png its loss curves.
    """
    recipe = load_recipe(recipe) if isinstance(recipe, str) else recipe
    overrides = {"method": "spss", "dataset": "proportions-csv", "data": {"test_fraction": 0.0}}
    recipe = normalise_recipe(merge(recipe, {**overrides, **({"train": {"epochs": epochs}} if epochs else {})}))
    out = Path(out)
    check_writable(out)
    patches = read_proportions_dataset(csv_path, patch_size=recipe["data"]["patch_size"], channels=channels)
    train_idx, val_idx, _ = split_indices(len(patches), 0.0, recipe["data"]["val_fraction"], recipe["data"]["split_seed"])
    if len(val_idx) == 0 or len(train_idx) == 0:
        raise KerasweakError(f"{len(patches)} images split into train {len(train_idx)}, validation {len(val_idx)}; "
                             "every part needs at least one image", csv_path)
    echo(f"{csv_path}: {len(patches)} images -> train {len(train_idx)}, val {len(val_idx)}")
    get_method("spss").warn_about(patches.subset(train_idx), echo)
    check_own_folder(out, {"recipe": recipe, "proportions_csv": str(Path(csv_path).resolve()), "channels": channels,
                           "seed": seed, "csv_sha256": hashlib.sha256(Path(csv_path).read_bytes()).hexdigest()})
    seed_dir = out / f"seed_{seed}"
    seed_dir.mkdir(parents=True, exist_ok=True)
    model, seconds, extra = get_method("spss").train(recipe, patches.subset(train_idx), patches.subset(val_idx), seed,
                                                     seed_dir, verbose)
    export_segmenter(model, out / "model", export_metadata(recipe, patches, model))
    results = {"recipe": recipe["name"], "proportions_csv": str(csv_path), "images": len(patches),
               "best_val_loss": min(csv_column(seed_dir / "log.csv", "val_loss")),
               "train_seconds": seconds, "epochs": int(extra["epochs"]), "config": recipe}
    loss_figure(out)
    write_json(out / "results.json", results)
    return results


def check_own_folder(out, config):
    """Refuse an OUT holding another run (run_folder.check_same_config), or results of a run older than config.json."""
    if (out / "results.json").exists() and not (out / "config.json").exists():
        raise KerasweakError("holds results of a run without config.json (an older kerasweak); use another --out", out)
    check_same_config(out / "config.json", config)
