"""The recipe runner: read the data, split it, train each seed with its method, score it, write OUT.

`run_recipe` trains each seed with the recipe's method (kerasweak.methods),
evaluates on the test patches against the masks, and writes OUT/results.json,
OUT/results.md, OUT/figure.png (with its class legend), OUT/loss.png (each seed's
loss curves) and OUT/model/ (SavedModel). A [sweep] recipe
runs once per setting (kerasweak.sweeps).

Rerunning with the same OUT skips finished seeds (OUT/seed_K/metrics.json) and
resumes an unfinished one from its last completed epoch (training.fit_stage).
The same command may run in several processes at once, sharing OUT: each seed
is claimed by one process (run_folder.claim_seed), and the process that
finishes last writes the results.
"""

import json
from dataclasses import replace
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from .data import degrade_proportions, read_patch_keypoints, read_patches, read_sizes_csv, recipe_split, sizes_for_sources
from .distribute import distribution_strategy
from .errors import KerasweakError
from .evaluation import evaluate_patches, fit_calibration, most_frequent_class_scores, predict_probabilities
from .inference import export_metadata, export_segmenter, test_set
from .io import atomic_path, check_writable, write_json, write_text
from .methods import get_method
from .models import segmenter_of
from .precision import float32_copy
from .progress import seed_progress
from .recipe import load_recipe, merge, normalise_recipe
from .reporting import aggregate, results_table, run_label
from .run_folder import CLAIM, check_same_config, claim_holder, claim_seed, label_files
from .sweeps import run_sweep


def run_recipe(recipe, data=None, out=None, epochs=None, seeds=1, max_samples=None, verbose="auto", echo=print,
               sizes_csv=None, deterministic=False, strategy=None, keypoints=None):
    """Run a recipe (a name, a TOML path or a recipe dict) for `seeds` seeds; return what OUT/results.json holds.

    Seeds claimed by another live process are left to it; if any is unfinished
    when this process is done with the others, nothing is written and None is returned.

    `strategy` ("none", "mirrored", "multiworker" or a tf.distribute.Strategy, see
    kerasweak.distribute) is what every model is built, compiled and trained under;
    the recipe's batch_size is then the global batch, split across the replicas.
    `deterministic` turns on TensorFlow op determinism for the rest of the process
    (every seed is already seeded), so two runs give identical metrics; it costs speed.

    A [degrade] section degrades the training and validation proportions (users
    would only have the degraded ones); the test patches are always scored against the masks.
    `sizes_csv` replaces the object sizes derived from the masks with a user's
    (kerasweak.data.sizes); every image needs one. `keypoints`, a keypoint file in
    whole-image pixels (kerasweak.data.keypoints), replaces the keypoints an
    spss_plus or points recipe samples from the masks; patches of images without
    points train on their proportions only (spss_plus) or not at all (points).
    """
    strategy = distribution_strategy(strategy)  # first: MultiWorkerMirroredStrategy must precede other TF work
    recipe = load_recipe(recipe) if isinstance(recipe, (str, Path)) else normalise_recipe(recipe)
    if epochs is not None:
        recipe = normalise_recipe(merge(recipe, {"train": {"epochs": epochs}}))
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    if keypoints is not None and "keypoints" not in get_method(recipe["method"]).sections:
        raise KerasweakError(f"--keypoints needs a recipe of a method that trains on keypoints (spss_plus, points), "
                             f"not {recipe['method']}", recipe["name"])
    options = dict(data=data, max_samples=max_samples, verbose=verbose, echo=echo, sizes_csv=sizes_csv, strategy=strategy,
                   keypoints=keypoints)
    if "sweep" in recipe:
        return run_sweep(recipe, lambda sub, sub_out, n: run_single(sub, out=sub_out, seeds=n, **options), out, seeds,
                         max_samples, echo, sizes_csv, keypoints)
    return run_single(recipe, out=out, seeds=seeds, **options)


def run_single(recipe, data=None, out=None, seeds=1, max_samples=None, verbose="auto", echo=print, sizes_csv=None,
               strategy=None, keypoints=None):
    """run_recipe for a normalised recipe without [sweep], under a tf.distribute strategy."""
    out = Path(out or Path("runs") / recipe["name"])
    check_writable(out)
    patches = read_patches(recipe, data, max_samples)
    if sizes_csv is not None:
        patches.sizes = sizes_for_sources(read_sizes_csv(sizes_csv), patches.sources, sizes_csv)
    if keypoints is not None:
        patches.keypoints, skipped = read_patch_keypoints(keypoints, patches, patches.proportions.shape[1])
        annotated = [len(points) for points in patches.keypoints if len(points)]
        echo(f"{keypoints}: {sum(annotated)} keypoints on {len(annotated)} patches; {skipped} skipped (in a remainder "
             f"strip the patch cut drops, or on a patch left out by --max-samples)")
    train_idx, val_idx, test_idx = recipe_split(recipe, patches)
    check_split_sizes(recipe, len(patches), train_idx, val_idx, test_idx, max_samples)
    fit_idx = np.concatenate([train_idx, val_idx])
    proportions = patches.proportions.copy()
    proportions[fit_idx] = degrade_proportions(recipe["degrade"], patches.proportions[fit_idx], recipe["name"])
    proportion_change = float(np.abs(proportions - patches.proportions)[fit_idx].sum(axis=1).mean())
    fit = replace(patches, proportions=proportions)
    train, val, test = fit.subset(train_idx), fit.subset(val_idx), patches.subset(test_idx)
    echo(f"{recipe['name']}: {len(patches)} patches -> train {len(train)}, val {len(val)}, test {len(test)}")
    method, evaluation = get_method(recipe["method"]), recipe["evaluation"]
    method.warn_about(train, echo)
    config = {"recipe": recipe, "max_samples": max_samples, "patches": len(patches), **label_files(sizes_csv, keypoints)}
    check_same_config(out / "config.json", config)

    seed_metrics, elsewhere = [], []
    for seed in range(seeds):
        seed_dir = out / f"seed_{seed}"
        done = seed_dir / "metrics.json"
        if done.exists():
            echo(f"seed {seed}: finished earlier, skipping")
            seed_metrics.append(with_evaluation_figures(json.loads(done.read_text()), seed_dir, test, evaluation, val, echo))
            continue
        if not claim_seed(seed_dir):
            holder = claim_holder(seed_dir / CLAIM)
            echo(f"seed {seed}: claimed by process {holder.get('pid', '?')} on {holder.get('host', '?')} "
                 f"({seed_dir / CLAIM}), leaving it to that process")
            elsewhere.append(seed)
            continue
        echo(f"seed {seed}: training ({recipe['method']}, up to {recipe['train']['epochs']} epochs)")
        later_seeds = sum(not (out / f"seed_{s}" / "metrics.json").exists() for s in range(seed + 1, seeds))
        with strategy.scope(), seed_progress(seed, later_seeds, echo):
            model, seconds, extra = method.train(recipe, train, val, seed, seed_dir, verbose,
                                                 lambda trained: evaluate_test(trained, test, evaluation, val))
        metrics = {**evaluate_test(model, test, evaluation, val), **extra, "train_seconds": seconds, "seed": seed,
                   "dtype_policy": model.dtype_policy.name}  # float32 where mixed_precision met a CPU without bfloat16
        with atomic_path(seed_dir / "model.keras") as tmp:
            model.save(tmp)
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
    floor = most_frequent_class_scores(train.masks, test.masks, patches.class_names)
    return finish_run(recipe, out, sorted(seed_metrics, key=lambda m: m["seed"]), test, patches, config, proportion_change,
                      test_set(patches, test_idx, max_samples), floor)


def check_split_sizes(recipe, count, train_idx, val_idx, test_idx, max_samples):
    """Refuse, before any training, a split with an empty training, validation or test part.

    An empty validation part leaves EarlyStopping and the best-weights checkpoint
    nothing to act on; an empty test part leaves nothing to score.
    """
    sizes = {"train": len(train_idx), "validation": len(val_idx), "test": len(test_idx)}
    if min(sizes.values()) == 0:
        cause = f"--max-samples {max_samples} is" if max_samples else "the data are"
        raise KerasweakError(f"{count} patches split into " + ", ".join(f"{part} {n}" for part, n in sizes.items())
                             + f"; every part needs at least one patch ({cause} too few)", recipe["name"])


def _predict_fn(model):
    """The model's class maps computed in float32, as its export computes them (precision.float32_copy)."""
    segmenter = float32_copy(segmenter_of(model))
    return lambda batch: segmenter(batch, training=False)


def evaluate_test(model, test, evaluation, val=None):
    """Test figures against the masks, the [evaluation] figures asked for, and with object sizes image IoU (eq. 23) and E (eq. 22).

    "calibrated" ([evaluation] calibrate) needs `val`, whose proportions fit the class bias; "flipped"
    ([evaluation] test_time_flips) scores the mean of each test patch's flips and rotations, "in_context"
    ([evaluation] reflect_context) each patch predicted reflect-padded.
    """
    predict_fn = _predict_fn(model)
    return evaluate_patches(predict_fn, test, e_measure=evaluation["e_measure"], trimap_widths=evaluation["trimap_widths"],
                            class_bias=fit_calibration(predict_fn, val) if evaluation["calibrate"] else None,
                            test_time_flips=evaluation["test_time_flips"], reflect_context=evaluation["reflect_context"])


def with_evaluation_figures(metrics, seed_dir, test, evaluation, val=None, echo=print):
    """A finished seed's metrics, completed with the [evaluation] figures it lacks (asked for after it finished).

    They are computed from the seed's saved model.keras and written back to its
    metrics.json; without the model the seed keeps what it has.
    """
    wanted = [key for key, asked in (("e_measure", evaluation["e_measure"]), ("trimap_miou", evaluation["trimap_widths"]),
                                     ("calibrated", evaluation["calibrate"]),
                                     ("flipped", evaluation["test_time_flips"]),
                                     ("in_context", evaluation["reflect_context"])) if asked]
    model_path = Path(seed_dir) / "model.keras"
    if all(key in metrics for key in wanted) or not model_path.exists():
        return metrics
    echo(f"{Path(seed_dir).name}: adding {', '.join(key for key in wanted if key not in metrics)} from its model.keras")
    figures = evaluate_test(keras.saving.load_model(model_path, compile=False), test, evaluation, val)
    metrics = {**metrics, **{key: value for key, value in figures.items() if key not in metrics}}
    write_json(Path(seed_dir) / "metrics.json", metrics)
    return metrics


def finish_run(recipe, out, seed_metrics, test, patches, config, proportion_change, test_patches=None, floor=None):
    """Aggregate the seeds, export the best seed that has its model.keras, write figures (loss.png too) and tables.

    `test_patches` (inference.test_set) goes into the export's kerasweak.json, so `evaluate` scores the same patches.
    `floor` (evaluation.most_frequent_class_scores) is written as "most_frequent_class" and a row of the table.

    Seeds kept from another machine may carry only metrics.json (results/ keeps
    no models); they count in the mean ± std but cannot be exported.
    """
    from .figures import class_map_figure, loss_figure, trimap_figure

    class_names = patches.class_names
    summary = aggregate(seed_metrics, class_names)
    best_seed = max(seed_metrics, key=lambda m: m["miou"])["seed"]
    with_model = [m for m in seed_metrics if (out / f"seed_{m['seed']}" / "model.keras").exists()]
    exported_seed = max(with_model, key=lambda m: m["miou"])["seed"] if with_model else None
    if exported_seed is not None:
        model = keras.saving.load_model(out / f"seed_{exported_seed}" / "model.keras")
        exported = next(m for m in seed_metrics if m["seed"] == exported_seed)
        export_segmenter(model, out / "model",
                         export_metadata(recipe, patches, model, exported.get("calibrated", {}).get("class_bias"),
                                         test_patches=test_patches))
        pick = np.linspace(0, len(test) - 1, num=min(4, len(test))).astype(int)
        probabilities = predict_probabilities(_predict_fn(model), test.images[pick])
        class_map_figure(out / "figure.png", test.images[pick], test.masks[pick], probabilities, class_names, patches.palette,
                         title=f"{recipe['name']}, seed {exported_seed}: input, ground truth, predicted class maps")
    if "trimap_miou" in summary:
        trimap_figure(out / "trimap.png", {run_label(recipe): summary["trimap_miou"]},
                      title=f"{recipe['name']}: test mIoU near and away from boundaries ({len(seed_metrics)} seeds)")
    loss_figure(out)
    results = {"recipe": recipe["name"], "seeds": len(seed_metrics), "best_seed": best_seed, "exported_seed": exported_seed,
               "summary": summary, "per_seed": seed_metrics, "proportion_change": proportion_change, "config": config}
    if floor is not None:
        results["most_frequent_class"] = floor
    write_json(out / "results.json", results)
    table = results_table(recipe, summary, class_names, len(seed_metrics), floor)
    write_text(out / "results.md", f"# {recipe['name']}\n\n{table}")
    return results
