"""Markdown reports of finished runs: mean ± std over seeds, the paper's table formats, per-class and trimap tables.

Used by the runner (OUT/results.md), sweeps (one row per setting) and compare (several runs in one table).
"""

import numpy as np


def run_label(recipe):
    """The row label of a recipe's run: its `label`, else its name."""
    return recipe.get("label") or recipe["name"]


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
    for view in VIEW_ROWS:
        if view in common:
            summary[view] = aggregate([m[view] for m in seed_metrics], class_names)
    if "trimap_miou" in common:
        summary["trimap_miou"] = {region: {width: _summary([m["trimap_miou"][region][width] for m in seed_metrics])
                                           for width in widths} for region, widths in seed_metrics[0]["trimap_miou"].items()}
    return summary


VIEW_ROWS = {"calibrated": "calibrated to the validation proportions",
             "flipped": "mean of the flipped and rotated patches",
             "in_context": "patches predicted with reflected context"}  # scores of another cut or prediction, a row each


def _pm(stat):
    """A percentage as mean ± std; "–" where there is nothing to score (NaN, e.g. a trimap band as wide as the patch)."""
    return "–" if np.isnan(stat["mean"]) else f"{100 * stat['mean']:.1f} ± {100 * stat['std']:.1f}"


def shown_classes(recipe, class_names):
    """Classes with an F1 column: those the paper's table quotes (recipe [paper].f1), else all."""
    quoted = recipe.get("paper", {}).get("f1")
    return [c for c in class_names if c in quoted] if quoted else list(class_names)


SIZE_COLUMNS = (("pretrain_image_iou", "IoU pre-trained"), ("image_iou", "IoU fine-tuned"),
                ("pretrain_size_error", "E pre-trained"), ("size_error", "E fine-tuned"))


def summary_cell(key, stat):
    """A seed summary's figure: a percentage as mean ± std, an object-size error in pixels² as mean ± std."""
    return f"{stat['mean']:.2f} ± {stat['std']:.2f}" if key.endswith("size_error") else _pm(stat)


def percent_cell(key, value):
    """One unaveraged score as a percentage."""
    return f"{100 * value:.1f}"


def score_columns(scores, shown, cell=summary_cell):
    """(headings, cells) of the paper's figures: mean IoU, per-class F1, mean accuracy; object-size figures first if any.

    `cell(key, value)` writes each figure: `summary_cell` for a seed summary,
    `percent_cell` for one scores dict (e.g. the most-frequent-class floor).
    """
    keys = [(key, heading) for key, heading in SIZE_COLUMNS if key in scores]
    keys += [("miou", "Mean IoU")] + [(k, f"mIoU ({k[5:]} classes)") for k in scores if k.startswith("miou_")]
    head = [heading for _, heading in keys] + [f"F1 {c}" for c in shown] + ["Mean accuracy"]
    cells = [cell(key, scores[key]) for key, _ in keys] + [cell("f1", scores["f1"][c]) for c in shown]
    cells.append(cell("accuracy", scores["accuracy"]))
    if "e_measure" in scores:
        head, cells = head + ["E-measure"], cells + [cell("e_measure", scores["e_measure"])]
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
    ("flipped", "The flipped row scores, for each test patch, the mean of the class maps of its 8 flips and 90° "
                "rotations (4 flips if it is not square), each turned back (test-time augmentation)."),
    ("in_context", "The reflected-context row predicts each test patch padded at every edge by its mirror image "
                   "([evaluation] reflect_context pixels) and scores the maps cropped back to the patch, so what the "
                   "network puts at its input's border falls outside the patch."),
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
    return notes + ([recipe["notes"].strip()] if recipe.get("notes") else [])


def results_table(recipe, summary, class_names, n_seeds, floor=None):
    """Markdown in the format of the paper's table for the dataset, with the paper's row beside ours.

    `floor` (evaluation.most_frequent_class_scores) adds the row of a map of one
    class everywhere, the score a model must beat to have learnt anything.

    The F1 columns are the classes the recipe's [paper] row quotes (Table 1: five
    Dubai classes; Table 2: Background and Mitochondria), or every class.
    """
    shown = shown_classes(recipe, class_names)
    head, cells = score_columns(summary, shown)
    label = f"{run_label(recipe)} ({n_seeds} seed{'s' if n_seeds > 1 else ''})"
    rows = [[label] + cells + [f"{summary['train_seconds']['mean']:.0f}"]]
    other_rows = [(f"{label}, {suffix}", score_columns(summary[view], shown)) for view, suffix in VIEW_ROWS.items() if view in summary]
    if floor is not None:
        floor_label = f"{floor['class']} everywhere (the training masks' most frequent class)"
        other_rows.append((floor_label, score_columns(floor, shown, percent_cell)))
    for row_label, columns in other_rows:
        cells = dict(zip(*columns))
        rows.append([row_label] + [cells.get(h, "") for h in head] + [""])
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



def value_text(value, separator=", "):
    """A list-valued sweep setting (e.g. λ = [4, 2, 0]) as text; an override table as its label; any other value as it is."""
    if isinstance(value, dict):
        return value["label"]
    return separator.join(map(str, value)) if isinstance(value, list) else value


def setting_name(key, value):
    """The folder of one sweep setting: OUT/<key>_<value>, a list's items joined by "-" (lambdas_4-2-0); OUT/<label> for an override table."""
    return value["label"] if isinstance(value, dict) else f"{key}_{value_text(value, '-')}"



def sweep_key(sweep):
    """What a [sweep] varies, as its folders and default heading name it: the parameter's key, or "setting" (override tables)."""
    return str(sweep["parameter"]).partition(".")[2] if sweep.get("parameter") else "setting"

