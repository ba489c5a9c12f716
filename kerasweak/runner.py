"""The recipe runner shared by every method.

A recipe is a small TOML file (see recipes/): dataset, method, model, training
and the paper's reference row. `run_recipe` reads the data, splits it, trains
each seed with the paper protocol (Adam, EarlyStopping on val_loss, restored
best weights), evaluates on the test patches against the masks, and writes
OUT/results.json, OUT/results.md, OUT/figure.png and OUT/model/ (SavedModel).

Rerunning with the same OUT skips finished seeds (OUT/seed_K/metrics.json) and
resumes an unfinished one from its last completed epoch (BackupAndRestore;
one whose backup is gone trains again from the start, see training.fit_stage).
The same command may also run in several processes at once, sharing OUT: each
seed is claimed by one process (see claim_seed), and the process that finishes
last writes the results.

Optional sections: [keypoints] (method spss_plus, see methods.py), [semeda] and
[sobel] (the edge-aware losses, see methods.py), [degrade] (degraded training
proportions, the paper's sensitivity studies), [evaluation] (E-measure,
boundary trimap mIoU and proportion-calibrated scores on the test patches, see evaluation_settings) and [sweep]
(one run per value of a recipe key, in OUT/<key>_<value>/, or per labelled
table of overrides, in OUT/<label>/, see run_sweep).
"""

import json
import os
import re
import socket
import tomllib
from dataclasses import replace
from importlib import resources
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from .data import (clustered_proportions, find_dataset, noisy_proportions, read_dubai, read_epfl, read_hippocampus,
                   read_patch_keypoints, read_proportions_dataset, read_sizes_csv, sizes_for_sources, split_indices)
from .data.degrade import DEGRADE_MODES
from .distribute import distribution_strategy
from .errors import KerasweakError
from .io import atomic_path, check_writable, write_json, write_text
from .methods import get_method, section_settings
from .models import segmenter_of
from .training import csv_column, train_seed, train_spss_seed

READERS = {"aerial-dubai": read_dubai, "epfl-em": read_epfl, "hippocampus": read_hippocampus}
PACKAGE_RECIPES = "kerasweak.recipes"
DEGRADE_KEYS = ("clusters", "noise", "mode", "seed")


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


# ----------------------------------------------------------------------------- reporting

def _summary(values):
    values = np.asarray(values, dtype=np.float64)
    return {"mean": float(values.mean()), "std": float(values.std()), "values": values.tolist()}


def aggregate(seed_metrics, class_names):
    """Mean ± std over seeds of every reported figure that all seeds have.

    A figure some seeds lack (an [evaluation] figure added after they finished)
    is left out rather than averaged over fewer seeds.
    """
    common = [k for k in seed_metrics[0] if all(k in m for m in seed_metrics)]
    summary = {key: _summary([m[key] for m in seed_metrics]) for key in common if isinstance(seed_metrics[0][key], float)}
    for group in ("iou", "f1", "precision", "recall", "e_measure_per_class"):
        if group in common:
            summary[group] = {c: _summary([m[group][c] for m in seed_metrics]) for c in class_names}
    if "calibrated" in common:
        summary["calibrated"] = aggregate([m["calibrated"] for m in seed_metrics], class_names)
    if "trimap_miou" in common:
        summary["trimap_miou"] = {region: {width: _summary([m["trimap_miou"][region][width] for m in seed_metrics])
                                           for width in widths} for region, widths in seed_metrics[0]["trimap_miou"].items()}
    return summary


def _pm(stat):
    """A percentage as mean ± std; "–" where there is nothing to score (NaN, e.g. a trimap band as wide as the patch)."""
    return "–" if np.isnan(stat["mean"]) else f"{100 * stat['mean']:.1f} ± {100 * stat['std']:.1f}"


def shown_classes(recipe, class_names):
    """Classes with an F1 column: those the paper's table quotes (recipe [paper].f1), else all."""
    quoted = recipe.get("paper", {}).get("f1")
    return [c for c in class_names if c in quoted] if quoted else list(class_names)


SIZE_COLUMNS = (("pretrain_image_iou", "IoU pre-trained"), ("image_iou", "IoU fine-tuned"),
                ("pretrain_size_error", "E pre-trained"), ("size_error", "E fine-tuned"))


def score_columns(summary, shown):
    """(headings, cells) of the paper's figures: mean IoU, per-class F1, mean accuracy; object-size figures first if any."""
    extra = [k for k in summary if k.startswith("miou_")]
    head = ["Mean IoU"] + [f"mIoU ({k[5:]} classes)" for k in extra] + [f"F1 {c}" for c in shown] + ["Mean accuracy"]
    cells = [_pm(summary["miou"])] + [_pm(summary[k]) for k in extra] + [_pm(summary["f1"][c]) for c in shown] + [_pm(summary["accuracy"])]
    if "e_measure" in summary:
        head, cells = head + ["E-measure"], cells + [_pm(summary["e_measure"])]
    sizes = [(key, heading) for key, heading in SIZE_COLUMNS if key in summary]
    head = [heading for _, heading in sizes] + head
    cells = [_pm(summary[key]) if "iou" in key else f"{summary[key]['mean']:.2f} ± {summary[key]['std']:.2f}"
             for key, _ in sizes] + cells
    return head, cells


def markdown_table(head, rows):
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] + ["| " + " | ".join(map(str, r)) + " |" for r in rows]


FIGURE_NOTES = (
    ("e_measure", "E-measure is Fan et al.'s enhanced-alignment measure of each class's map per test image, "
                  "averaged over images, then over classes."),
    ("trimap_miou", "Trimap mIoU scores only the pixels within w pixels of a ground-truth boundary (boundary) or the "
                    "rest (non-boundary), averaging over the classes present there (SEMEDA paper Fig. 5)."),
    ("calibrated", "The calibrated row offsets each class's log-probability by a constant fitted so that the predicted "
                   "class areas on the validation patches match their given proportions (no masks)."),
    ("image_iou", "IoU is the object-size paper's eq. 23, per test image, averaged; E (eq. 22) is the mean squared "
                  "difference, in pixels², between the object sizes of the masks and of the predictions."),
)


def table_notes(recipe, summary):
    """The sentences under a results table: what its figures are, for each kind of figure the summary has."""
    notes = ["Figures are percentages, mean ± std over seeds, on the test patches against the masks.",
             "Mean accuracy is overall pixel accuracy."]
    if any(k.startswith("miou_") for k in summary):
        notes.append("Mean IoU averages all classes (Unlabeled included, as the paper does); the next column leaves Unlabeled out.")
    notes += [note for key, note in FIGURE_NOTES if key in summary]
    return notes + ([recipe["notes"].strip()] if "notes" in recipe else [])


def results_table(recipe, summary, class_names, n_seeds):
    """Markdown in the format of the paper's table for the dataset, with the paper's row beside ours.

    The F1 columns are the classes the recipe's [paper] row quotes (Table 1: five
    Dubai classes; Table 2: Background and Mitochondria), or every class.
    """
    shown = shown_classes(recipe, class_names)
    head, cells = score_columns(summary, shown)
    label = f"{recipe.get('label', recipe['name'])} ({n_seeds} seed{'s' if n_seeds > 1 else ''})"
    rows = [[label] + cells + [f"{summary['train_seconds']['mean']:.0f}"]]
    if "calibrated" in summary:
        calibrated = dict(zip(*score_columns(summary["calibrated"], shown)))
        rows.append([f"{label}, calibrated to the validation proportions"] + [calibrated.get(h, "") for h in head] + [""])
    paper = recipe.get("paper")
    if paper:
        quoted = {"Mean IoU": paper.get("miou", ""), "Mean accuracy": paper.get("accuracy", ""),
                  **{f"F1 {c}": v for c, v in paper.get("f1", {}).items()}}
        rows.append([paper["label"]] + [quoted.get(h, "") for h in head] + [""])
    lines = markdown_table(["Model"] + head + ["Seconds/seed"], rows)
    lines += ["", f"Recipe `{recipe['name']}`: {recipe['description']}."] + table_notes(recipe, summary)
    return "\n".join(lines + detail_tables([(rows[0][0], summary)], class_names)) + "\n"


def detail_tables(rows, class_names):
    """Markdown lines: per-class IoU, F1 and E-measure (SEMEDA Tables 2-3) and trimap mIoU per band width (Fig. 5).

    rows: (label, summary) pairs; figures a summary lacks are left out, and
    without E-measure or trimap figures there are no lines at all.
    """
    lines = []
    if any("e_measure_per_class" in summary for _, summary in rows):
        metrics = (("IoU", "iou"), ("F1", "f1"), ("E-measure", "e_measure_per_class"))
        table = [[name, label] + [_pm(summary[key][c]) for c in class_names]
                 for name, key in metrics for label, summary in rows if key in summary]
        lines += ["", "## Per class", ""] + markdown_table(["Metric", "Model"] + list(class_names), table)
    trimaps = [(label, summary["trimap_miou"]) for label, summary in rows if "trimap_miou" in summary]
    if trimaps:
        widths = list(trimaps[0][1]["boundary"])
        table = [[label, region.replace("_", "-")] + [_pm(trimap[region][w]) if w in trimap[region] else "" for w in widths]
                 for label, trimap in trimaps for region in trimap]
        head = ["Model", "Region"] + [f"w = {w}" for w in widths]
        lines += ["", "## Trimap mIoU by band width w (pixels)", ""] + markdown_table(head, table)
    return lines


# ----------------------------------------------------------------------------- the run

def _predict_fn(model):
    segmenter = segmenter_of(model)
    return lambda batch: segmenter(batch, training=False)


def _export_metadata(recipe, patches, model, class_bias=None):
    """What `predict` and `evaluate` need to use an exported model on its own; `class_bias` if [evaluation] calibrate fitted one."""
    calibration = {} if class_bias is None else {"class_bias": list(class_bias)}
    return {**calibration, "method": recipe["method"], "recipe": recipe, "dataset": recipe["dataset"],
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


def load_test_patches(recipe, data=None, max_samples=None):
    """The test patches of the recipe's split, as a run with these options scored them."""
    patches = load_patches(recipe, data, max_samples)
    split = recipe["data"]
    return patches.subset(split_indices(len(patches), split["test_fraction"], split["val_fraction"], split["split_seed"])[2])


EVALUATION_DEFAULTS = {"e_measure": False, "trimap_widths": [], "calibrate": False}


def evaluation_settings(recipe):
    """The recipe's [evaluation] section: `e_measure` (bool), `trimap_widths` (band widths in pixels, each >= 1), `calibrate` (bool).

    `calibrate` adds "calibrated" test scores (kerasweak.evaluation.fit_calibration),
    and the exported model carries their class bias for `predict`.
    """
    settings = section_settings(recipe, "evaluation", EVALUATION_DEFAULTS)
    widths = settings["trimap_widths"]
    for flag in ("e_measure", "calibrate"):
        if not isinstance(settings[flag], bool):
            raise KerasweakError(f"[evaluation] {flag} must be true or false, got {settings[flag]!r}", recipe["name"])
    if not (isinstance(widths, list) and all(isinstance(w, int) and not isinstance(w, bool) and w >= 1 for w in widths)):
        raise KerasweakError(f"[evaluation] trimap_widths must be a list of integers >= 1, got {widths!r}", recipe["name"])
    return settings


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


def run_recipe(recipe, data=None, out=None, epochs=None, seeds=1, max_samples=None, verbose="auto", echo=print,
               sizes_csv=None, deterministic=False, strategy=None, keypoints=None):
    """Run a recipe for `seeds` seeds (a [sweep] recipe: see run_sweep); return what OUT/results.json holds.

    Seeds claimed by another live process (claim_seed) are left to it; if any is
    unfinished when this process is done with the others, nothing is written and None is returned.

    `strategy` ("none", "mirrored", "multiworker" or a tf.distribute.Strategy, see
    kerasweak.distribute) is what every model is built, compiled and trained under;
    the recipe's batch_size is then the global batch, split across the replicas.

    `deterministic` turns on TensorFlow op determinism for the rest of the
    process (every seed is already seeded: Python, NumPy, TF and the tf.data
    shuffles), so two runs give identical metrics; it costs speed (README).

    A [degrade] section degrades the training and validation proportions (users
    would only have the degraded ones); the test patches are always scored against the masks.
    `sizes_csv` replaces the object sizes derived from the masks with a user's
    (see kerasweak.data.sizes); every image needs one.
    `keypoints`, a keypoint file in whole-image pixels (kerasweak.data.keypoints),
    replaces the keypoints an spss_plus recipe samples from the masks; patches of
    images without points train on their proportions only.
    """
    strategy = distribution_strategy(strategy)  # first: MultiWorkerMirroredStrategy must precede other TF work
    if isinstance(recipe, str):
        recipe = load_recipe(recipe)
    if epochs is not None:
        recipe = _merge(recipe, {"train": {"epochs": epochs}})
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    if keypoints is not None and recipe["method"] != "spss_plus":
        raise KerasweakError(f"--keypoints needs a recipe of method spss_plus, not {recipe['method']}", recipe["name"])
    if "sweep" in recipe:
        return run_sweep(recipe, data, out, seeds, max_samples, verbose, echo, sizes_csv, strategy, keypoints)
    out = Path(out or Path("runs") / recipe["name"])
    check_writable(out)
    evaluation = evaluation_settings(recipe)
    patches = load_patches(recipe, data, max_samples)
    if sizes_csv is not None:
        patches.sizes = sizes_for_sources(read_sizes_csv(sizes_csv), patches.sources, sizes_csv)
    if keypoints is not None:
        patches.keypoints, skipped = read_patch_keypoints(keypoints, patches, patches.proportions.shape[1])
        annotated = [len(points) for points in patches.keypoints if len(points)]
        echo(f"{keypoints}: {sum(annotated)} keypoints on {len(annotated)} patches; {skipped} skipped (in a remainder "
             f"strip the patch cut drops, or on a patch left out by --max-samples)")
    dcfg = recipe["data"]
    train_idx, val_idx, test_idx = split_indices(len(patches), dcfg["test_fraction"], dcfg["val_fraction"], dcfg["split_seed"])
    fit_idx = np.concatenate([train_idx, val_idx])
    proportions = patches.proportions.copy()
    proportions[fit_idx] = degrade_proportions(recipe, patches.proportions[fit_idx])
    proportion_change = float(np.abs(proportions - patches.proportions)[fit_idx].sum(axis=1).mean())
    fit = replace(patches, proportions=proportions)
    train, val, test = fit.subset(train_idx), fit.subset(val_idx), patches.subset(test_idx)
    echo(f"{recipe['name']}: {len(patches)} patches -> train {len(train)}, val {len(val)}, test {len(test)}")
    config = {"recipe": recipe, "max_samples": max_samples, "patches": len(patches), **_label_files(sizes_csv, keypoints)}
    _check_same_config(out / "config.json", config)

    method = get_method(recipe["method"])
    seed_metrics, elsewhere = [], []
    for seed in range(seeds):
        seed_dir = out / f"seed_{seed}"
        done = seed_dir / "metrics.json"
        if done.exists():
            echo(f"seed {seed}: finished earlier, skipping")
            seed_metrics.append(_with_evaluation_figures(json.loads(done.read_text()), seed_dir, test, evaluation, val, echo))
            continue
        if not claim_seed(seed_dir):
            holder = _claim_holder(seed_dir / CLAIM)
            echo(f"seed {seed}: claimed by process {holder.get('pid', '?')} on {holder.get('host', '?')} "
                 f"({seed_dir / CLAIM}), leaving it to that process")
            elsewhere.append(seed)
            continue
        echo(f"seed {seed}: training ({recipe['method']}, up to {recipe['train']['epochs']} epochs)")
        with strategy.scope():
            model, seconds, extra = (method.train or train_seed)(recipe, train, val, seed, seed_dir, verbose,
                                                                 lambda trained: evaluate_test(trained, test, evaluation, val))
        metrics = {**evaluate_test(model, test, evaluation, val), **extra, "train_seconds": seconds, "seed": seed}
        model.save(seed_dir / "model.keras")
        write_json(done, metrics)
        (seed_dir / CLAIM).unlink(missing_ok=True)
        seed_metrics.append(metrics)
        sizes = f", image IoU {100 * metrics['image_iou']:.1f}, E {metrics['size_error']:.2f}" if "image_iou" in metrics else ""
        edges = f", E-measure {100 * metrics['e_measure']:.1f}" if "e_measure" in metrics else ""
        echo(f"seed {seed}: mIoU {100 * metrics['miou']:.1f}, accuracy {100 * metrics['accuracy']:.1f}{sizes}{edges}, {seconds:.0f} s")

    if any(not (out / f"seed_{seed}" / "metrics.json").exists() for seed in elsewhere):
        echo(f"{recipe['name']}: seed(s) {', '.join(map(str, elsewhere))} still training in other processes; "
             "the last to finish writes the results")
        return None
    seed_metrics += [json.loads((out / f"seed_{seed}" / "metrics.json").read_text()) for seed in elsewhere]
    return _finish(recipe, out, sorted(seed_metrics, key=lambda m: m["seed"]), test, patches, config, proportion_change)


CLAIM = "claim.json"


def _this_process():
    return {"host": socket.gethostname(), "pid": os.getpid()}


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, under another user
    return True


def claim_seed(seed_dir):
    """Claim an unfinished seed for this process (SEED_DIR/claim.json); False when another live process holds it.

    The claim file is created exclusively, so of two processes starting the same
    seed one wins. A claim left by a process of this host that has ended (killed,
    crashed) is taken over; one from another host holds until its file is deleted.
    """
    seed_dir.mkdir(parents=True, exist_ok=True)
    path = seed_dir / CLAIM
    try:
        with open(path, "x") as claim:
            json.dump(_this_process(), claim)
        return True
    except FileExistsError:
        holder = _claim_holder(path)
        if holder == _this_process() or (holder.get("host") == socket.gethostname() and not _alive(holder["pid"])):
            write_json(path, _this_process())
            return True
        return False


def _claim_holder(path):
    """The claim's {"host", "pid"}; {} while its holder is writing or removing it (held, either way)."""
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def _label_files(sizes_csv, keypoints):
    """The user's label files as config.json records them (their paths; None when not given)."""
    return {"sizes_csv": None if sizes_csv is None else str(sizes_csv), "keypoints": None if keypoints is None else str(keypoints)}


def _with_evaluation_figures(metrics, seed_dir, test, evaluation, val=None, echo=print):
    """A finished seed's metrics, completed with the [evaluation] figures it lacks (asked for after it finished).

    They are computed from the seed's saved model.keras and written back to its
    metrics.json; without the model the seed keeps what it has.
    """
    wanted = [key for key, asked in (("e_measure", evaluation["e_measure"]), ("trimap_miou", evaluation["trimap_widths"]),
                                     ("calibrated", evaluation["calibrate"])) if asked]
    model_path = Path(seed_dir) / "model.keras"
    if all(key in metrics for key in wanted) or not model_path.exists():
        return metrics
    echo(f"{Path(seed_dir).name}: adding {', '.join(key for key in wanted if key not in metrics)} from its model.keras")
    figures = evaluate_test(keras.saving.load_model(model_path, compile=False), test, evaluation, val)
    metrics = {**metrics, **{key: value for key, value in figures.items() if key not in metrics}}
    write_json(Path(seed_dir) / "metrics.json", metrics)
    return metrics


def evaluate_test(model, test, evaluation, val=None):
    """Test figures against the masks, the [evaluation] figures asked for, and with object sizes image IoU (eq. 23) and E (eq. 22).

    "calibrated" ([evaluation] calibrate) needs `val`, whose proportions fit the class bias.
    """
    from .evaluation import evaluate_patches, fit_calibration

    predict_fn = _predict_fn(model)
    return evaluate_patches(predict_fn, test, e_measure=evaluation["e_measure"], trimap_widths=evaluation["trimap_widths"],
                            class_bias=fit_calibration(predict_fn, val) if evaluation["calibrate"] else None)


TRAINING_KEYS = ("dataset", "method", "data", "model", "train", "keypoints", "degrade", "sizes", "semeda", "sobel", "sweep")


def _fingerprint(config):
    """The parts of a run's config that change its results (not labels, notes or paper rows).

    Unset options (None) are left out, so a folder written before an option existed still matches.
    """
    recipe = config["recipe"]
    options = {key: value for key, value in config.items() if value is not None}
    return json.loads(json.dumps({**options, "recipe": {k: recipe[k] for k in TRAINING_KEYS if recipe.get(k) is not None}}))


def _check_same_config(path, config):
    """Refuse to resume into an OUT that holds a run with other training settings."""
    if path.exists():
        if _fingerprint(json.loads(path.read_text())) != _fingerprint(config):
            raise KerasweakError("holds a run with a different recipe or options; use another --out", path.parent)
    else:
        write_json(path, config)


def _check_same_sweep(path, config, key):
    """_check_same_config for a sweep's OUT, which may gain settings; its config.json then lists them all.

    Dropping or changing a setting is refused once a run has used it (its OUT/<setting>/
    exists); one never started may be redefined. Each setting's own folder checks its
    training settings as before.
    """
    def without_settings(config):
        sweep = {k: v for k, v in config["recipe"]["sweep"].items() if k not in ("values", "seeds")}
        return {**config, "recipe": {**config["recipe"], "sweep": sweep}}

    if not path.exists():
        return write_json(path, config)
    earlier = json.loads(path.read_text())
    if _fingerprint(without_settings(earlier)) != _fingerprint(without_settings(config)):
        raise KerasweakError("holds a run with a different recipe or options; use another --out", path.parent)
    earlier_sweep, sweep = (_fingerprint(c)["recipe"]["sweep"] for c in (earlier, config))
    dropped = [setting_name(key, value) for value in earlier_sweep["values"] if value not in sweep["values"]]
    used = [name for name in dropped if (path.parent / name).exists()]
    if used:
        raise KerasweakError(f"holds runs of sweep settings this recipe no longer has ({', '.join(used)}); use another --out",
                             path.parent)
    if earlier_sweep != sweep:
        write_json(path, config)


def _finish(recipe, out, seed_metrics, test, patches, config, proportion_change):
    """Aggregate the seeds, export the best seed that has its model.keras, write figure and tables.

    Seeds kept from another machine may carry only metrics.json (results/ keeps
    no models); they count in the mean ± std but cannot be exported.
    """
    from .evaluation import predict_probabilities
    from .figures import class_map_figure, trimap_figure

    class_names = patches.class_names
    summary = aggregate(seed_metrics, class_names)
    best_seed = max(seed_metrics, key=lambda m: m["miou"])["seed"]
    with_model = [m for m in seed_metrics if (out / f"seed_{m['seed']}" / "model.keras").exists()]
    exported_seed = max(with_model, key=lambda m: m["miou"])["seed"] if with_model else None
    if exported_seed is not None:
        model = keras.saving.load_model(out / f"seed_{exported_seed}" / "model.keras")
        exported = next(m for m in seed_metrics if m["seed"] == exported_seed)
        export_segmenter(model, out / "model",
                         _export_metadata(recipe, patches, model, exported.get("calibrated", {}).get("class_bias")))
        pick = np.linspace(0, len(test) - 1, num=min(4, len(test))).astype(int)
        probabilities = predict_probabilities(_predict_fn(model), test.images[pick])
        class_map_figure(out / "figure.png", test.images[pick], test.masks[pick], probabilities, class_names, patches.palette,
                         title=f"{recipe['name']}, seed {exported_seed}: input, ground truth, predicted class maps")
    if "trimap_miou" in summary:
        trimap_figure(out / "trimap.png", {recipe.get("label", recipe["name"]): summary["trimap_miou"]},
                      title=f"{recipe['name']}: test mIoU near and away from boundaries ({len(seed_metrics)} seeds)")
    results = {"recipe": recipe["name"], "seeds": len(seed_metrics), "best_seed": best_seed, "exported_seed": exported_seed,
               "summary": summary, "per_seed": seed_metrics, "proportion_change": proportion_change, "config": config}
    write_json(out / "results.json", results)
    table = results_table(recipe, summary, class_names, len(seed_metrics))
    write_text(out / "results.md", f"# {recipe['name']}\n\n{table}")
    return results


# ----------------------------------------------------------------------------- sweeps

SWEEP_SECTIONS = ("degrade", "sizes", "keypoints", "semeda", "sobel", "model", "train")
SWEEP_PLOTS = ("miou", "size_iou", "epoch_seconds", "finetune_curves")


SETTING_LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")


def sweep_key(sweep):
    """What a [sweep] varies, as its folders and default heading name it: the parameter's key, or "setting" (override tables)."""
    return str(sweep["parameter"]).partition(".")[2] if "parameter" in sweep else "setting"


def _check_override_tables(recipe, values):
    """[sweep] values without a parameter: tables of recipe sections to override, each with a distinct, folder-safe label."""
    for value in values:
        if not (isinstance(value, dict) and isinstance(value.get("label"), str) and SETTING_LABEL.fullmatch(value["label"])):
            raise KerasweakError(f"[sweep] without a parameter, each value must be a table with a label of letters, digits, "
                                 f"'_.+-', got {value!r}", recipe["name"])
        unknown = sorted(name for name, table in value.items()
                         if name != "label" and not (name in SWEEP_SECTIONS and isinstance(table, dict)))
        if unknown:
            raise KerasweakError(f"[sweep] value {value['label']}: {', '.join(unknown)} must be tables of a section among "
                                 f"{', '.join(SWEEP_SECTIONS)}", recipe["name"])
    labels = [value["label"] for value in values]
    if len(set(labels)) != len(labels):
        raise KerasweakError(f"[sweep] value labels must differ, got {', '.join(labels)}", recipe["name"])


def _sweep_settings(recipe):
    """The [sweep] section checked: parameter "section.key" and its values, or labelled override tables; seeds, plots.

    Returns (sweep, section, key); section is None for override tables.
    """
    sweep = {"plots": ["miou"], **recipe["sweep"]}
    if not isinstance(sweep.get("values"), list) or not sweep["values"]:
        raise KerasweakError("[sweep] values must be a non-empty list", recipe["name"])
    if "parameter" in sweep or not all(isinstance(value, dict) for value in sweep["values"]):
        section, _, key = str(sweep.get("parameter", "")).partition(".")
        if section not in SWEEP_SECTIONS or not key:
            raise KerasweakError(f"[sweep] parameter must be 'section.key' with section one of {', '.join(SWEEP_SECTIONS)}, "
                                 f"got {sweep.get('parameter')!r}", recipe["name"])
    else:
        _check_override_tables(recipe, sweep["values"])
        section, key = None, sweep_key(sweep)
    if len(sweep.get("seeds", sweep["values"])) != len(sweep["values"]):
        raise KerasweakError("[sweep] seeds must give one seed count per value", recipe["name"])
    unknown = sorted(set(sweep["plots"]) - set(SWEEP_PLOTS))
    if unknown:
        raise KerasweakError(f"[sweep] plots: unknown {', '.join(unknown)}; known: {', '.join(SWEEP_PLOTS)}", recipe["name"])
    return sweep, section, key


def run_sweep(recipe, data=None, out=None, seeds=1, max_samples=None, verbose="auto", echo=print, sizes_csv=None,
              strategy=None, keypoints=None):
    """One run_recipe per value of the [sweep] parameter, then a table and plots.

    `parameter = "section.key"` names the recipe setting swept, e.g. "degrade.noise"
    (paper Table 3) or "sizes.pixel_annotated" (the object-size paper's Fig. 7).
    Without a parameter, each value is a table of recipe sections to override
    with a `label` (an ablation: [[sweep.values]] label = "kl", train.loss = "kl"),
    run in OUT/<label>/.
    Setting key = value runs in OUT/<key>_<value>/ with the usual outputs, with
    max(`seeds`, [sweep] seeds[i]) seeds; a finished setting (setting_finished)
    is skipped, an unfinished one completed. Several processes running the same
    sweep share its settings' seeds (claim_seed); the last to finish writes the
    full table, and a partial one (marked so) is written before each setting
    trained after a finished one. OUT/results.md is one row per setting (the paper's
    Table 3/4 format, F1 and accuracy added); [sweep] plots name the figures
    (the first is OUT/sweep.png, the others OUT/sweep_<plot>.png); OUT/results.json
    has every summary.
    """
    sweep, section, key = _sweep_settings(recipe)
    out = Path(out or Path("runs") / recipe["name"])
    check_writable(out)
    config = {"recipe": recipe, "max_samples": max_samples, **_label_files(sizes_csv, keypoints)}
    _check_same_sweep(out / "config.json", config, key)
    base = {name: value for name, value in recipe.items() if name != "sweep"}
    names = [setting_name(key, value) for value in sweep["values"]]
    n_seeds = [max(seeds, minimum) for minimum in sweep.get("seeds", [1] * len(names))]
    done = {}

    def load_if_finished(name, n):
        if name not in done and setting_finished(out / name, n):
            done[name] = json.loads((out / name / "results.json").read_text())
        return name in done

    for name in [name for name, n in zip(names, n_seeds) if load_if_finished(name, n)]:
        echo(f"{name}: finished earlier, skipping")
    for value, name, n in zip(sweep["values"], names, n_seeds):
        if load_if_finished(name, n):  # finished earlier, or meanwhile by another process
            continue
        if done:  # the table so far, before a run that may take hours
            _write_sweep_outputs(out, recipe, sweep, section, key, config, names, done)
        echo(f"{name}: running {n} seed{'s' if n > 1 else ''}")
        overrides = {s: t for s, t in value.items() if s != "label"} if section is None else {section: {key: value}}
        sub = _merge(base, {"name": f"{recipe['name']}/{name}", **overrides})
        results = run_recipe(sub, data, out / name, seeds=n, max_samples=max_samples, verbose=verbose,
                             echo=echo, sizes_csv=sizes_csv, strategy=strategy, keypoints=keypoints)
        if results is not None:  # None: some of its seeds train in another process
            done[name] = results
    unfinished = [name for name in names if name not in done]
    if unfinished:
        echo(f"{recipe['name']}: {', '.join(unfinished)} still training in other processes; "
             "the last to finish writes the full table")
    results = _write_sweep_outputs(out, recipe, sweep, section, key, config, names, done) if done else None
    return None if unfinished else results


def _write_sweep_outputs(out, recipe, sweep, section, key, config, names, done):
    """OUT/results.md, results.json and the plots of the finished settings (`done`: {name: results}), marked partial
    when some of `names` are not among them."""
    settings = [{"value": value, "seeds": done[name]["seeds"], "summary": done[name]["summary"],
                 "proportion_change": done[name]["proportion_change"]}
                for value, name in zip(sweep["values"], names) if name in done]
    unfinished = [name for name in names if name not in done]
    paper = {str(k): v for k, v in sweep.get("paper_miou", {}).items()}
    heading = sweep.get("heading", key)
    logs = _finetune_logs(out, key, settings) if "finetune_curves" in sweep["plots"] else None
    for index, plot in enumerate(sweep["plots"]):
        _sweep_plot(plot, out / ("sweep.png" if index == 0 else f"sweep_{plot}.png"), recipe, settings, heading, paper, logs)
    results = {"recipe": recipe["name"], "sweep": sweep.get("parameter"), "settings": settings, "config": config,
               **({"unfinished": unfinished} if unfinished else {})}
    write_json(out / "results.json", results)
    tables = [sweep_table(recipe, settings, paper, heading, show_label_change=section == "degrade")]
    if unfinished:
        tables.append(f"**Partial:** {len(settings)} of {len(names)} settings. Not finished yet: "
                      f"{', '.join(unfinished)}; rerunning the recipe's command trains them and completes this table.\n")
    details = detail_tables([(f"{heading} = {value_text(s['value'])}", s["summary"]) for s in settings],
                            list(settings[0]["summary"]["f1"]))
    if details:
        tables.append("\n".join(details[1:]) + "\n")
    if logs is not None:
        tables.append(curves_table(logs, heading))
    write_text(out / "results.md", f"# {recipe['name']}\n\n" + "\n".join(tables))
    return results


def setting_finished(folder, n_seeds):
    """Whether a sweep setting's run is complete: its results.json holds `n_seeds` seeds, each with its metrics.json.

    Anything less (a run killed before results.json, a seed folder lost) is run
    again: run_recipe skips the seeds that have metrics.json and resumes the others.
    """
    done = folder / "results.json"
    return (done.exists() and json.loads(done.read_text())["seeds"] == n_seeds
            and all((folder / f"seed_{seed}" / "metrics.json").exists() for seed in range(n_seeds)))


def value_text(value, separator=", "):
    """A list-valued sweep setting (e.g. λ = [4, 2, 0]) as text; an override table as its label; any other value as it is."""
    if isinstance(value, dict):
        return value["label"]
    return separator.join(map(str, value)) if isinstance(value, list) else value


def setting_name(key, value):
    """The folder of one sweep setting: OUT/<key>_<value>, a list's items joined by "-" (lambdas_4-2-0); OUT/<label> for an override table."""
    return value["label"] if isinstance(value, dict) else f"{key}_{value_text(value, '-')}"


def _finetune_logs(out, key, settings):
    """{value: seed 0's fine-tuning log columns} of each setting of an object-size sweep."""
    logs = {}
    for s in settings:
        log = out / setting_name(key, s["value"]) / "seed_0" / "finetune" / "log.csv"
        logs[s["value"]] = {column: csv_column(log, column) for column in ("val_size_error", "val_iou", "epoch_seconds")}
    return logs


def _sweep_plot(plot, path, recipe, settings, heading, paper, finetune_logs):
    from .figures import curves_figure, sweep_figure

    values = [value_text(s["value"]) for s in settings]
    n_seeds = "/".join(sorted({str(s["seeds"]) for s in settings}))
    title = f"{recipe['name']} ({n_seeds} seed{'' if n_seeds == '1' else 's'} per setting)"
    if plot == "miou":
        sweep_figure(path, values, {"kerasweak": [s["summary"]["miou"] for s in settings]}, heading, "test mean IoU (%)",
                     paper=paper, title=title)
    elif plot == "size_iou":
        sweep_figure(path, values, {"after pre-training": [s["summary"]["pretrain_image_iou"] for s in settings],
                                    "after size fine-tuning": [s["summary"]["image_iou"] for s in settings]},
                     heading, "test IoU (%)", title=title, log_x=True)
    elif plot == "epoch_seconds":
        sweep_figure(path, values, {"size fine-tuning": [s["summary"]["finetune_epoch_seconds"] for s in settings]},
                     heading, "seconds per epoch", title=title, percent=False)
    else:
        curves_figure(path, finetune_logs, heading, title=f"{recipe['name']}: validation, seed 0")


def sweep_table(recipe, settings, paper, heading, show_label_change=False):
    """Markdown, one row per setting, in the format of the paper's Tables 3 and 4 with F1 and accuracy added."""
    shown = shown_classes(recipe, list(settings[0]["summary"]["f1"]))
    head = score_columns(settings[0]["summary"], shown)[0] + (["Paper mIoU"] if paper else [])
    head += (["Label change (L1)"] if show_label_change else []) + ["Seeds", "Seconds/seed"]
    rows = [[value_text(s["value"])] + score_columns(s["summary"], shown)[1] + ([paper.get(str(s["value"]), "")] if paper else [])
            + ([f"{s['proportion_change']:.3f}"] if show_label_change else [])
            + [s["seeds"], f"{s['summary']['train_seconds']['mean']:.0f}"] for s in settings]
    notes = [f"Recipe `{recipe['name']}`: {recipe['description']}."]
    if show_label_change:
        notes.append("Label change is the mean L1 distance Σ_c |ρ̃_c − ρ_c| between the degraded and the true training proportions.")
    return "\n".join(markdown_table([heading] + head, rows) + [""] + notes + table_notes(recipe, settings[0]["summary"])) + "\n"


def curves_table(logs, heading):
    """Markdown: per fine-tuning epoch, validation E and IoU for each setting (the paper's Fig. 6 as numbers)."""
    values = list(logs)
    head = ["Epoch"] + [f"E ({heading} = {v})" for v in values] + [f"IoU % ({heading} = {v})" for v in values]
    longest = max(len(log["val_size_error"]) for log in logs.values())
    cell = lambda column, v, e, scale, digits: (f"{scale * logs[v][column][e]:.{digits}f}" if e < len(logs[v][column]) else "")
    rows = [[e + 1] + [cell("val_size_error", v, e, 1, 3) for v in values] + [cell("val_iou", v, e, 100, 1) for v in values]
            for e in range(longest)]
    seconds = [f"{heading} = {v}: {np.mean(logs[v]['epoch_seconds']):.1f} s" for v in values if logs[v]["epoch_seconds"]]
    return "\n".join(["## Validation per fine-tuning epoch (seed 0)", ""] + markdown_table(head, rows)
                     + ["", "Mean epoch duration: " + "; ".join(seconds) + "."]) + "\n"


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
    model, seconds, extra = train_spss_seed(recipe, patches.subset(train_idx), patches.subset(val_idx), seed, seed_dir, verbose)
    export_segmenter(model, out / "model", _export_metadata(recipe, patches, model))
    results = {"recipe": recipe["name"], "proportions_csv": str(csv_path), "images": len(patches),
               "best_val_loss": min(csv_column(seed_dir / "log.csv", "val_loss")),
               "train_seconds": seconds, "epochs": int(extra["epochs"]), "config": recipe}
    write_json(out / "results.json", results)
    return results
