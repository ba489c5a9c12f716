"""`kerasweak train METHOD DIR --out OUT`: one method on a generic dataset folder (kerasweak.data.folder), as a recipe run.

The command builds a recipe (dataset "folder", the method, the schema's
defaults, the options given), checks that DIR holds the labels the method
needs, and runs it with kerasweak.runner.run_recipe, so the outputs (results,
figure, loss.png, model/, resume by rerunning) are a recipe run's. It adds
OUT/split.csv (which image went where). A folder without masks (proportions
only) has nothing to score against: the method trains and exports model/,
results.json reports the training run and loss.png its loss curves.
"""

import csv
import io
import json
from pathlib import Path

from .data.folder import image_parts, read_folder, read_labels
from .errors import KerasweakError
from .methods import METHODS
from .io import check_writable, csv_column, write_json, write_text
from .recipe import normalise_recipe

METHOD_NAMES = {name.replace("_", "-"): name for name in METHODS}  # command-line names: spss-plus for spss_plus


def missing_labels(method, labels):
    """What DIR lacks for `method` (a command-line method name), as one sentence; None when nothing is missing."""
    masks, props = labels.masks is not None, labels.proportions is not None
    if method in ("pixel", "semeda", "sobel") and not masks:
        return f"{method} needs masks/ (one index or colour PNG per image, named as the image)"
    if method == "spss" and not (masks or props):
        return "spss needs proportions.csv, or masks to compute proportions from"
    if method == "spss-plus":
        if labels.keypoints is None and not masks:
            return "spss-plus needs keypoints.csv, or masks to sample keypoints from"
        if not (masks or props):
            return "spss-plus needs proportions.csv, or masks to compute proportions from, beside its keypoints"
    if method == "points" and labels.keypoints is None and not masks:
        return "points needs keypoints.csv, or masks to sample keypoints from"
    if method == "sizes":
        if not labels.spec.binary:
            return f"sizes needs two classes (background and object); dataset.toml names {len(labels.spec.classes)}"
        if not masks:
            return "sizes needs masks/ (it pre-trains on a few masked images and validates on masks); " \
                   "sizes.csv, or the masks, give the object sizes"
    return None


def folder_recipe(method, folder, epochs=None, patch_size=None, batch_size=None, base_filters=None, mixed_precision=False):
    """The normalised recipe `kerasweak train` runs: dataset "folder", the method, the schema's defaults, the options given.

    --epochs also caps the method's other stages (SEMEDA's edge network, the size fine-tuning).
    """
    if method not in METHOD_NAMES:
        raise KerasweakError(f"unknown method {method!r}; known: {', '.join(METHOD_NAMES)}")
    recipe = {"name": f"{method}-{Path(folder).resolve().name}", "dataset": "folder", "method": METHOD_NAMES[method],
              "description": f"kerasweak train {method} on the generic folder {folder}",
              "data": {}, "model": {}, "train": {}}
    if patch_size is not None:
        recipe["data"]["patch_size"] = patch_size
    if base_filters is not None:
        recipe["model"]["base_filters"] = base_filters
    if batch_size is not None:
        recipe["train"]["batch_size"] = batch_size
    if mixed_precision:
        recipe["train"]["mixed_precision"] = True
    if epochs is not None:
        recipe["train"]["epochs"] = epochs
        if method == "semeda":
            recipe["semeda"] = {"edge_epochs": min(epochs, 10)}
        if method == "sizes":
            recipe["sizes"] = {"finetune_epochs": min(epochs, 40)}
    return normalise_recipe(recipe)


def split_text(parts):
    """split.csv text of {image: part}."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["image", "split"])
    writer.writerows(sorted(parts.items()))
    return buffer.getvalue()


def train_folder(method, folder, out, epochs=None, seeds=1, patch_size=None, batch_size=None, base_filters=None,
                 mixed_precision=False, max_samples=None, strategy=None, deterministic=False, echo=print, verbose="auto"):
    """`kerasweak train`: run `method` on the generic folder; return results.json's content (None if others still train)."""
    from .runner import run_recipe

    folder = Path(folder)
    if not folder.exists():
        raise KerasweakError("data folder does not exist", folder)
    recipe = folder_recipe(method, folder, epochs, patch_size, batch_size, base_filters, mixed_precision)
    labels = read_labels(folder)
    for warning in labels.warnings:
        echo(f"warning: {warning}")
    problem = missing_labels(method, labels)
    if problem:
        raise KerasweakError(problem, folder)
    out = Path(out)
    check_writable(out)
    parts = image_parts(labels, recipe["data"])
    counts = {part: sum(1 for p in parts.values() if p == part) for part in ("train", "val", "test")}
    source = "split.csv" if labels.split is not None else f"seeded by image (split_seed {recipe['data']['split_seed']})"
    echo(f"{folder}: {len(parts)} images, split {source}: train {counts['train']}, val {counts['val']}, "
         f"test {counts['test']} images; written to {out / 'split.csv'}")
    if labels.masks is None:
        results = train_mask_free(recipe, folder, out, labels, seeds, max_samples, echo, verbose)
    else:
        results = run_recipe(recipe, data=folder, out=out, seeds=seeds, max_samples=max_samples, echo=echo,
                             deterministic=deterministic, strategy=strategy, verbose=verbose)
    write_text(out / "split.csv", split_text(parts))
    return results


def train_mask_free(recipe, folder, out, labels, seeds, max_samples, echo, verbose="auto"):
    """Train on a folder without masks (proportions, keypoints): each seed trains and the best is exported, unscored."""
    from .data.registry import recipe_split
    from .inference import export_metadata, export_segmenter
    from .methods import get_method
    from .run_folder import check_same_config
    from .figures import loss_figure

    patches = read_folder(folder, recipe["data"], max_samples, labels=labels)
    train_idx, val_idx, _ = recipe_split(recipe, patches)
    if not len(train_idx) or not len(val_idx):
        raise KerasweakError("too few images to train and validate on; add images or a split.csv", folder)
    check_same_config(out / "config.json", {"recipe": recipe, "max_samples": max_samples, "patches": len(patches)})
    echo(f"{recipe['name']}: {len(patches)} images without masks -> train {len(train_idx)}, val {len(val_idx)} "
         "(nothing to score against: no IoU figures)")
    method, per_seed = get_method(recipe["method"]), []
    method.warn_about(patches.subset(train_idx), echo)
    for seed in range(seeds):
        seed_dir = out / f"seed_{seed}"
        done = seed_dir / "done_mask_free.json"
        if done.exists():
            per_seed.append(json.loads(done.read_text()))
            continue
        model, seconds, extra = method.train(recipe, patches.subset(train_idx), patches.subset(val_idx), seed, seed_dir, verbose)
        model.save(seed_dir / "model.keras")
        logs = sorted(seed_dir.glob("**/log.csv"))
        entry = {"seed": seed, "best_val_loss": min(csv_column(logs[0], "val_loss")) if logs else None,
                 "train_seconds": seconds, "epochs": float(extra.get("epochs", 0))}
        write_json(done, entry)
        per_seed.append(entry)
        echo(f"seed {seed}: best validation loss {entry['best_val_loss']:.4f}, {seconds:.0f} s")
    import keras

    best = min(per_seed, key=lambda m: m["best_val_loss"])
    model = keras.saving.load_model(out / f"seed_{best['seed']}" / "model.keras", compile=False)
    export_segmenter(model, out / "model", export_metadata(recipe, patches, model))
    results = {"recipe": recipe["name"], "seeds": len(per_seed), "exported_seed": best["seed"], "per_seed": per_seed,
               "scored": False, "config": {"recipe": recipe, "max_samples": max_samples}}
    loss_figure(out)
    write_json(out / "results.json", results)
    write_text(out / "results.md", f"# {recipe['name']}\n\nNo masks in {folder}, so no IoU figures; best validation loss "
                                   f"{best['best_val_loss']:.4f} (seed {best['seed']}).\n")
    return results
