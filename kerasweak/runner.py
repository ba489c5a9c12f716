"""The recipe runner shared by every method.

A recipe is a small TOML file (see recipes/): dataset, method, model, training
and the paper's reference row. `run_recipe` reads the data, splits it, trains
each seed with the paper protocol (Adam, EarlyStopping on val_loss, restored
best weights), evaluates on the test patches against the masks, and writes
OUT/results.json, OUT/results.md, OUT/figure.png and OUT/model/ (SavedModel).

Rerunning with the same OUT skips finished seeds (OUT/seed_K/metrics.json) and
resumes an unfinished one from its last completed epoch (BackupAndRestore).

Optional sections: [keypoints] (method spss_plus, see methods.py), [degrade]
(degraded training proportions, the paper's sensitivity studies) and [sweep]
(one run per value of a [degrade] key, in OUT/<key>_<value>/, see run_sweep).
"""

import csv
import json
import time
import tomllib
from dataclasses import replace
from importlib import resources
from pathlib import Path

import keras
import numpy as np

from .data import (clustered_proportions, find_dataset, make_dataset, noisy_proportions, read_dubai, read_epfl,
                   read_proportions_dataset, split_indices)
from .data.degrade import DEGRADE_MODES
from .errors import KerasweakError
from .io import atomic_path, check_writable, write_json, write_text
from .methods import get_method
from .models import segmenter_of

READERS = {"aerial-dubai": read_dubai, "epfl-em": read_epfl}
PACKAGE_RECIPES = "kerasweak.recipes"
DEGRADE_PARAMETERS = ("clusters", "noise")
DEGRADE_KEYS = DEGRADE_PARAMETERS + ("mode", "seed")


# ----------------------------------------------------------------------------- recipes

def _merge(base, override):
    merged = dict(base)
    for key, value in override.items():
        merged[key] = _merge(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict) else value
    return merged


def _recipe_files():
    return {p.name[:-5]: p for p in resources.files(PACKAGE_RECIPES).iterdir() if p.name.endswith(".toml")}


def list_recipes():
    """(name, description) of every packaged recipe."""
    return [(name, load_recipe(name)["description"]) for name in sorted(_recipe_files())]


def load_recipe(name_or_path):
    """A recipe dict from a packaged name or a TOML path; `extends = "other"` inherits."""
    files = _recipe_files()
    path = files.get(name_or_path) or Path(name_or_path)
    if not path.is_file():
        raise KerasweakError(f"unknown recipe; known: {', '.join(sorted(files))}", name_or_path)
    try:
        recipe = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise KerasweakError(f"invalid TOML ({err})", path) from None
    if "extends" in recipe:
        recipe = _merge(load_recipe(recipe.pop("extends")), recipe)
    return recipe


# ----------------------------------------------------------------------------- training

class EpochTimer(keras.callbacks.Callback):
    """Adds `epoch_seconds` to the logs (hence to the CSV log) of each epoch."""

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["epoch_seconds"] = time.perf_counter() - self.start


def _csv_column(path, column):
    if not Path(path).exists():
        return []
    with open(path, newline="") as handle:
        return [float(row[column]) for row in csv.DictReader(handle) if row.get(column)]


def train_seed(recipe, train, val, seed, seed_dir, verbose="auto"):
    """Train one seed; return (trained model, training wall seconds, epochs run)."""
    keras.utils.set_random_seed(seed)
    cfg = recipe["train"]
    keras.mixed_precision.set_global_policy("mixed_bfloat16" if cfg.get("mixed_precision") else "float32")
    method = get_method(recipe["method"])
    num_outputs = train.proportions.shape[1]  # 1 for binary data with one sigmoid output
    model = method.build(num_outputs, {**recipe.get("model", {}), "channels": train.images.shape[-1]})
    model.compile(optimizer=keras.optimizers.Adam(cfg["learning_rate"]), loss=method.loss(recipe),
                  loss_weights=method.loss_weights(recipe))
    batch = cfg["batch_size"]
    train_data = make_dataset(train.images, method.targets(train, recipe), batch, shuffle=True, seed=seed)
    val_data = make_dataset(val.images, method.targets(val, recipe), batch)
    log_path = seed_dir / "log.csv"
    best_path = seed_dir / "best.weights.h5"
    previous_best = min(_csv_column(log_path, "val_loss"), default=None)
    callbacks = [
        keras.callbacks.BackupAndRestore(str(seed_dir / "backup")),
        EpochTimer(),
        keras.callbacks.ModelCheckpoint(str(best_path), monitor="val_loss", save_best_only=True,
                                        save_weights_only=True, initial_value_threshold=previous_best),
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=cfg["patience"]),
        keras.callbacks.CSVLogger(str(log_path), append=True),
        keras.callbacks.TensorBoard(str(seed_dir / "tensorboard"), write_graph=False, profile_batch=0),
    ]
    model.fit(train_data, validation_data=val_data, epochs=cfg["epochs"], callbacks=callbacks, verbose=verbose)
    if best_path.exists():
        model.load_weights(str(best_path))
    seconds = sum(_csv_column(log_path, "epoch_seconds"))
    return model, seconds, len(_csv_column(log_path, "epoch_seconds"))


# ----------------------------------------------------------------------------- reporting

def _summary(values):
    values = np.asarray(values, dtype=np.float64)
    return {"mean": float(values.mean()), "std": float(values.std()), "values": values.tolist()}


def aggregate(seed_metrics, class_names):
    """Mean ± std over seeds of every reported figure."""
    keys = [k for k in seed_metrics[0] if isinstance(seed_metrics[0][k], float)]
    summary = {key: _summary([m[key] for m in seed_metrics]) for key in keys}
    for group in ("iou", "f1"):
        summary[group] = {c: _summary([m[group][c] for m in seed_metrics]) for c in class_names}
    return summary


def _pm(stat):
    return f"{100 * stat['mean']:.1f} ± {100 * stat['std']:.1f}"


def _shown_classes(recipe, class_names):
    """Classes with an F1 column: those the paper's table quotes (recipe [paper].f1), else all."""
    quoted = recipe.get("paper", {}).get("f1")
    return [c for c in class_names if c in quoted] if quoted else list(class_names)


def _score_columns(summary, shown):
    """(headings, cells) of the paper's figures: mean IoU, per-class F1, mean accuracy."""
    extra = [k for k in summary if k.startswith("miou_")]
    head = ["Mean IoU"] + [f"mIoU ({k[5:]} classes)" for k in extra] + [f"F1 {c}" for c in shown] + ["Mean accuracy"]
    cells = [_pm(summary["miou"])] + [_pm(summary[k]) for k in extra] + [_pm(summary["f1"][c]) for c in shown] + [_pm(summary["accuracy"])]
    return head, cells


def _markdown(head, rows):
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] + ["| " + " | ".join(map(str, r)) + " |" for r in rows]


def _notes(recipe, summary):
    notes = ["Figures are percentages, mean ± std over seeds, on the test patches against the masks.",
             "Mean accuracy is overall pixel accuracy."]
    if any(k.startswith("miou_") for k in summary):
        notes.append("Mean IoU averages all classes (Unlabeled included, as the paper does); the next column leaves Unlabeled out.")
    return notes + ([recipe["notes"].strip()] if "notes" in recipe else [])


def results_table(recipe, summary, class_names, n_seeds):
    """Markdown in the format of the paper's table for the dataset, with the paper's row beside ours.

    The F1 columns are the classes the recipe's [paper] row quotes (Table 1: five
    Dubai classes; Table 2: Background and Mitochondria), or every class.
    """
    head, cells = _score_columns(summary, _shown_classes(recipe, class_names))
    rows = [[f"{recipe.get('label', recipe['name'])} ({n_seeds} seed{'s' if n_seeds > 1 else ''})"] + cells
            + [f"{summary['train_seconds']['mean']:.0f}"]]
    paper = recipe.get("paper")
    if paper:
        quoted = {"Mean IoU": paper.get("miou", ""), "Mean accuracy": paper.get("accuracy", ""),
                  **{f"F1 {c}": v for c, v in paper.get("f1", {}).items()}}
        rows.append([paper["label"]] + [quoted.get(h, "") for h in head] + [""])
    lines = _markdown(["Model"] + head + ["Seconds/seed"], rows)
    return "\n".join(lines + ["", f"Recipe `{recipe['name']}`: {recipe['description']}."] + _notes(recipe, summary)) + "\n"


# ----------------------------------------------------------------------------- the run

def _predict_fn(model):
    segmenter = segmenter_of(model)
    return lambda batch: segmenter(batch, training=False)


def _export_metadata(recipe, patches, model):
    """What `predict` and `evaluate` need to use an exported model on its own."""
    return {"method": recipe["method"], "recipe": recipe, "dataset": recipe["dataset"],
            "class_names": patches.class_names, "palette": np.asarray(patches.palette).tolist(),
            "num_outputs": int(segmenter_of(model).output_shape[-1]),
            "patch_size": recipe["data"]["patch_size"], "channels": int(patches.images.shape[-1]),
            "split": recipe["data"], "input": "raw pixel values 0-255, float32, (batch, H, W, channels), H and W multiples of 16"}


def export_segmenter(model, path, metadata):
    """Export the segmenter as a SavedModel with kerasweak.json beside it, atomically."""
    with atomic_path(path) as tmp:
        segmenter_of(model).export(str(tmp), format="tf_saved_model", verbose=False)
        (Path(tmp) / "kerasweak.json").write_text(json.dumps(metadata, indent=2))


def load_patches(recipe, data=None, max_samples=None):
    """The recipe's dataset, read from --data / $KERASWEAK_DATA / ../shared/data."""
    root = find_dataset(recipe["dataset"], data)
    return READERS[recipe["dataset"]](root, patch_size=recipe["data"]["patch_size"], max_samples=max_samples)


def degrade_proportions(recipe, proportions):
    """(N, C) proportions degraded by the recipe's [degrade] section (paper section 3.2); unchanged without one.

    clusters = K: K-means, every image gets one cluster member's proportions;
    noise = σ in percent: eq. 5, renormalised by mode = "softmax" (the paper) or
    "clip". Both: clusters first. seed fixes the degradation, so every training
    seed sees the same labels.
    """
    settings = recipe.get("degrade", {})
    unknown = sorted(set(settings) - set(DEGRADE_KEYS))
    if unknown:
        raise KerasweakError(f"[degrade] has unknown keys {', '.join(unknown)}; known: {', '.join(DEGRADE_KEYS)}", recipe["name"])
    mode, seed = settings.get("mode", "softmax"), settings.get("seed", 0)
    if mode not in DEGRADE_MODES:
        raise KerasweakError(f"[degrade] mode must be one of {', '.join(DEGRADE_MODES)}, got {mode!r}", recipe["name"])
    k, noise = settings.get("clusters"), settings.get("noise", 0)
    if k is not None:
        if not (isinstance(k, int) and 1 <= k <= len(proportions)):
            raise KerasweakError(f"[degrade] clusters must be an integer from 1 to the {len(proportions)} training "
                                 f"and validation patches, got {k!r}", recipe["name"])
        proportions = clustered_proportions(proportions, k, seed)
    if not (isinstance(noise, (int, float)) and noise >= 0):
        raise KerasweakError(f"[degrade] noise must be a percentage >= 0, got {noise!r}", recipe["name"])
    return noisy_proportions(proportions, noise / 100, seed, mode) if "noise" in settings else proportions


def run_recipe(recipe, data=None, out=None, epochs=None, seeds=1, max_samples=None, verbose="auto", echo=print):
    """Run a recipe for `seeds` seeds (a [sweep] recipe: see run_sweep); return what OUT/results.json holds.

    A [degrade] section degrades the training and validation proportions (users
    would only have the degraded ones); the test patches are always scored against the masks.
    """
    if isinstance(recipe, str):
        recipe = load_recipe(recipe)
    if epochs is not None:
        recipe = _merge(recipe, {"train": {"epochs": epochs}})
    if "sweep" in recipe:
        return run_sweep(recipe, data, out, seeds, max_samples, verbose, echo)
    out = Path(out or Path("runs") / recipe["name"])
    check_writable(out)
    patches = load_patches(recipe, data, max_samples)
    dcfg = recipe["data"]
    train_idx, val_idx, test_idx = split_indices(len(patches), dcfg["test_fraction"], dcfg["val_fraction"], dcfg["split_seed"])
    fit_idx = np.concatenate([train_idx, val_idx])
    proportions = patches.proportions.copy()
    proportions[fit_idx] = degrade_proportions(recipe, patches.proportions[fit_idx])
    proportion_change = float(np.abs(proportions - patches.proportions)[fit_idx].sum(axis=1).mean())
    fit = replace(patches, proportions=proportions)
    train, val, test = fit.subset(train_idx), fit.subset(val_idx), patches.subset(test_idx)
    echo(f"{recipe['name']}: {len(patches)} patches -> train {len(train)}, val {len(val)}, test {len(test)}")
    config = {"recipe": recipe, "max_samples": max_samples, "patches": len(patches)}
    _check_same_config(out / "config.json", config)

    seed_metrics = []
    for seed in range(seeds):
        seed_dir = out / f"seed_{seed}"
        done = seed_dir / "metrics.json"
        if done.exists():
            echo(f"seed {seed}: finished earlier, skipping")
            seed_metrics.append(json.loads(done.read_text()))
            continue
        seed_dir.mkdir(parents=True, exist_ok=True)
        echo(f"seed {seed}: training ({recipe['method']}, up to {recipe['train']['epochs']} epochs)")
        model, seconds, epochs_run = train_seed(recipe, train, val, seed, seed_dir, verbose)
        metrics = evaluate_and_save(model, test, seed_dir)
        metrics.update(train_seconds=seconds, epochs=float(epochs_run), seed=seed)
        write_json(done, metrics)
        seed_metrics.append(metrics)
        echo(f"seed {seed}: mIoU {100 * metrics['miou']:.1f}, accuracy {100 * metrics['accuracy']:.1f}, {seconds:.0f} s")

    return _finish(recipe, out, seed_metrics, test, patches, config, proportion_change)


def evaluate_and_save(model, test, seed_dir):
    from .evaluation import evaluate_patches

    metrics = evaluate_patches(_predict_fn(model), test)
    model.save(seed_dir / "model.keras")
    return metrics


TRAINING_KEYS = ("dataset", "method", "data", "model", "train", "keypoints", "degrade", "sweep")


def _fingerprint(config):
    """The parts of a run's config that change its results (not labels, notes or paper rows)."""
    recipe = config["recipe"]
    return json.loads(json.dumps({**config, "recipe": {k: recipe.get(k) for k in TRAINING_KEYS}}))


def _check_same_config(path, config):
    """Refuse to resume into an OUT that holds a run with other training settings."""
    if path.exists():
        if _fingerprint(json.loads(path.read_text())) != _fingerprint(config):
            raise KerasweakError("holds a run with a different recipe or options; use another --out", path.parent)
    else:
        write_json(path, config)


def _finish(recipe, out, seed_metrics, test, patches, config, proportion_change):
    """Aggregate the seeds, export the best seed that has its model.keras, write figure and tables.

    Seeds kept from another machine may carry only metrics.json (results/ keeps
    no models); they count in the mean ± std but cannot be exported.
    """
    from .evaluation import predict_probabilities
    from .figures import class_map_figure

    class_names = patches.class_names
    summary = aggregate(seed_metrics, class_names)
    best_seed = max(seed_metrics, key=lambda m: m["miou"])["seed"]
    with_model = [m for m in seed_metrics if (out / f"seed_{m['seed']}" / "model.keras").exists()]
    exported_seed = max(with_model, key=lambda m: m["miou"])["seed"] if with_model else None
    if exported_seed is not None:
        model = keras.saving.load_model(out / f"seed_{exported_seed}" / "model.keras")
        export_segmenter(model, out / "model", _export_metadata(recipe, patches, model))
        pick = np.linspace(0, len(test) - 1, num=min(4, len(test))).astype(int)
        probabilities = predict_probabilities(_predict_fn(model), test.images[pick])
        class_map_figure(out / "figure.png", test.images[pick], test.masks[pick], probabilities, class_names, patches.palette,
                         title=f"{recipe['name']}, seed {exported_seed}: input, ground truth, predicted class maps")
    results = {"recipe": recipe["name"], "seeds": len(seed_metrics), "best_seed": best_seed, "exported_seed": exported_seed,
               "summary": summary, "per_seed": seed_metrics, "proportion_change": proportion_change, "config": config}
    write_json(out / "results.json", results)
    table = results_table(recipe, summary, class_names, len(seed_metrics))
    write_text(out / "results.md", f"# {recipe['name']}\n\n{table}")
    return results


# ----------------------------------------------------------------------------- sweeps

def _sweep_settings(recipe):
    sweep = recipe["sweep"]
    if sweep.get("parameter") not in DEGRADE_PARAMETERS:
        raise KerasweakError(f"[sweep] parameter must be one of {', '.join(DEGRADE_PARAMETERS)}, got {sweep.get('parameter')!r}", recipe["name"])
    if not isinstance(sweep.get("values"), list) or not sweep["values"]:
        raise KerasweakError("[sweep] values must be a non-empty list", recipe["name"])
    return sweep


def run_sweep(recipe, data=None, out=None, seeds=1, max_samples=None, verbose="auto", echo=print):
    """One run_recipe per value of the [sweep] parameter (a [degrade] key), then a table and a plot.

    Setting `parameter = value` runs in OUT/<parameter>_<value>/ with the usual
    outputs; a setting whose results.json already holds `seeds` seeds is skipped.
    OUT/results.md is the paper's Table 3/4 format with per-class F1 added,
    OUT/sweep.png plots mIoU against the parameter, OUT/results.json has every summary.
    """
    from .figures import sweep_figure

    sweep = _sweep_settings(recipe)
    parameter = sweep["parameter"]
    out = Path(out or Path("runs") / recipe["name"])
    check_writable(out)
    config = {"recipe": recipe, "max_samples": max_samples}
    _check_same_config(out / "config.json", config)
    base = {key: value for key, value in recipe.items() if key != "sweep"}
    settings = []
    for value in sweep["values"]:
        setting, done = f"{parameter}_{value}", out / f"{parameter}_{value}" / "results.json"
        results = json.loads(done.read_text()) if done.exists() else None
        if results is not None and results["seeds"] == seeds:
            echo(f"{setting}: finished earlier, skipping")
        else:
            echo(f"{setting}: running")
            sub = _merge(base, {"name": f"{recipe['name']}/{setting}", "degrade": {parameter: value}})
            results = run_recipe(sub, data, done.parent, seeds=seeds, max_samples=max_samples, verbose=verbose, echo=echo)
        settings.append({"value": value, "summary": results["summary"], "proportion_change": results["proportion_change"]})
    paper = {str(k): v for k, v in sweep.get("paper_miou", {}).items()}
    heading = sweep.get("heading", parameter)
    sweep_figure(out / "sweep.png", [s["value"] for s in settings], [s["summary"]["miou"] for s in settings],
                 heading, paper=paper, title=f"{recipe['name']}: test mIoU ({seeds} seed{'s' if seeds > 1 else ''})")
    results = {"recipe": recipe["name"], "sweep": parameter, "seeds": seeds, "settings": settings, "config": config}
    write_json(out / "results.json", results)
    write_text(out / "results.md", f"# {recipe['name']}\n\n{sweep_table(recipe, settings, paper, seeds, heading)}")
    return results


def sweep_table(recipe, settings, paper, n_seeds, heading):
    """Markdown in the format of the paper's Tables 3 and 4 (one row per setting), with F1 and accuracy added."""
    shown = _shown_classes(recipe, list(settings[0]["summary"]["f1"]))
    head = _score_columns(settings[0]["summary"], shown)[0]
    rows = [[s["value"]] + _score_columns(s["summary"], shown)[1] + [paper.get(str(s["value"]), ""), f"{s['proportion_change']:.3f}",
            f"{s['summary']['train_seconds']['mean']:.0f}"] for s in settings]
    lines = _markdown([heading] + head
                      + ["Paper mIoU", "Label change (L1)", "Seconds/seed"], rows)
    notes = [f"Recipe `{recipe['name']}`: {recipe['description']}; {n_seeds} seed{'s' if n_seeds > 1 else ''} per setting.",
             "Label change is the mean L1 distance Σ_c |ρ̃_c − ρ_c| between the degraded and the true training proportions."]
    return "\n".join(lines + [""] + notes + _notes(recipe, settings[0]["summary"])) + "\n"


def train_from_proportions_csv(csv_path, out, recipe="dubai-spss", epochs=None, channels=3, seed=0, verbose="auto", echo=print):
    """Train SPSS from a user's proportions CSV (no masks at all) and export the segmenter.

    Uses the recipe's model and protocol; a `val_fraction` of the images serves
    EarlyStopping. With no masks there is nothing to score segmentations
    against, so results.json reports the training run, not IoU.
    """
    recipe = load_recipe(recipe) if isinstance(recipe, str) else recipe
    recipe = _merge(recipe, {"method": "spss", "dataset": "proportions-csv", "data": {"test_fraction": 0.0}})
    if epochs is not None:
        recipe = _merge(recipe, {"train": {"epochs": epochs}})
    out = Path(out)
    check_writable(out)
    patches = read_proportions_dataset(csv_path, patch_size=recipe["data"]["patch_size"], channels=channels)
    train_idx, val_idx, _ = split_indices(len(patches), 0.0, recipe["data"]["val_fraction"], recipe["data"]["split_seed"])
    if len(val_idx) == 0 or len(train_idx) == 0:
        raise KerasweakError(f"{len(patches)} images are too few to hold out a validation part", csv_path)
    echo(f"{csv_path}: {len(patches)} images -> train {len(train_idx)}, val {len(val_idx)}")
    seed_dir = out / f"seed_{seed}"
    seed_dir.mkdir(parents=True, exist_ok=True)
    model, seconds, epochs_run = train_seed(recipe, patches.subset(train_idx), patches.subset(val_idx), seed, seed_dir, verbose)
    export_segmenter(model, out / "model", _export_metadata(recipe, patches, model))
    results = {"recipe": recipe["name"], "proportions_csv": str(csv_path), "images": len(patches),
               "best_val_loss": min(_csv_column(seed_dir / "log.csv", "val_loss")),
               "train_seconds": seconds, "epochs": epochs_run, "config": recipe}
    write_json(out / "results.json", results)
    return results
