"""Compare finished runs side by side: the SEMEDA paper's Table 1/4 format, its Fig. 5, and predictions (Fig. 6 style).

`compare_runs` reads the results.json of several OUT folders (a sweep's OUT gives
one row per setting), so PPCE, Sobel, SEMEDA and a λ sweep trained separately
end up in one table.
"""

import json
from pathlib import Path

import numpy as np

from .errors import KerasweakError
from .io import check_writable, write_text
from .data.registry import read_test_patches
from .recipe import normalise_recipe
from .reporting import (detail_tables, markdown_table, run_label, score_columns, setting_name, shown_classes, sweep_key,
                        table_notes, value_text)


def _results(folder):
    path = Path(folder) / "results.json"
    if not path.is_file():
        raise KerasweakError("no results.json: not a finished kerasweak run", folder)
    return json.loads(path.read_text())


def read_runs(outs):
    """The runs in OUT folders, and the settings each partial sweep OUT still lacks.

    Returns ([(label, folder, results)], {OUT: [unfinished setting names]}): one
    run per run OUT, one per finished setting of a sweep OUT. The label is the
    recipe's `label` (plus the sweep setting); a label that recurs gets its
    folder name added, so every row and figure column is distinct.
    """
    runs, unfinished = [], {}
    for out in map(Path, outs):
        results = _results(out)
        recipe = results["config"]["recipe"]
        label = run_label(recipe)
        if results.get("unfinished"):
            unfinished[out] = results["unfinished"]
        if "settings" in results:
            key = sweep_key(recipe["sweep"])
            heading = recipe["sweep"].get("heading") or key
            for setting in results["settings"]:
                folder = out / setting_name(key, setting["value"])
                runs.append((f"{label}, {heading} = {value_text(setting['value'])}", folder, _results(folder)))
        else:
            runs.append((label, out, results))
    labels = [label for label, _, _ in runs]
    return [(f"{label} ({folder.name})" if labels.count(label) > 1 else label, folder, results)
            for label, folder, results in runs], unfinished


def _check_comparable(runs):
    """All runs must score the same classes; the first run's are the reference."""
    classes = list(runs[0][2]["summary"]["f1"])
    for _, folder, results in runs[1:]:
        if list(results["summary"]["f1"]) != classes:
            raise KerasweakError(f"scores classes {', '.join(results['summary']['f1'])}, not those of "
                                 f"{runs[0][1]} ({', '.join(classes)})", folder)
    return classes


def compare_table(runs):
    """Markdown: one row per run (mIoU, per-class F1, accuracy, E-measure if any), then per-class and trimap tables."""
    class_names = _check_comparable(runs)
    shown = shown_classes(runs[0][2]["config"]["recipe"], class_names)
    columns = [dict(zip(*score_columns(results["summary"], shown))) for _, _, results in runs]
    head = list(dict.fromkeys(heading for cells in columns for heading in cells))
    rows = [[label] + [cells.get(h, "") for h in head] + [results["seeds"], f"{results['summary']['train_seconds']['mean']:.0f}"]
            for (label, _, results), cells in zip(runs, columns)]
    seen = {key: None for _, _, results in runs for key in results["summary"]}
    lines = markdown_table(["Method"] + head + ["Seeds", "Seconds/seed"], rows) + [""] + table_notes({}, seen)
    lines += [f"- {label}: `{folder}` (recipe `{results['config']['recipe']['name']}`)" for label, folder, results in runs]
    return "\n".join(lines + detail_tables([(label, results["summary"]) for label, _, results in runs], class_names)) + "\n"


def predictions_figure(runs, path, data=None, num_patches=4):
    """The same test patches predicted by each run's exported model/: input, ground truth, one column per run.

    Every run must have been scored on the same test patches (dataset, split
    and --max-samples), which are read again from `data`.
    """
    from .evaluation import predict_probabilities
    from .figures import methods_figure
    from .inference import load_export
    from .metrics import labels_from_probabilities

    config = runs[0][2]["config"]
    same = lambda c: (c["recipe"]["dataset"], c["recipe"]["data"], c.get("max_samples"))  # noqa: E731
    for _, folder, results in runs[1:]:
        if same(results["config"]) != same(config):
            raise KerasweakError(f"was tested on other patches (dataset, split or --max-samples) than {runs[0][1]}", folder)
    test = read_test_patches(normalise_recipe(config["recipe"], stored=True), data, config.get("max_samples"))
    pick = np.linspace(0, len(test) - 1, num=min(num_patches, len(test))).astype(int)
    predictions = {label: labels_from_probabilities(predict_probabilities(load_export(folder / "model")[0], test.images[pick]))
                   for label, folder, _ in runs}
    methods_figure(path, test.images[pick], test.masks[pick], predictions, test.palette,
                   title="test patches: input, ground truth, each method's prediction")


def compare_runs(outs, out, figure=None, data=None, num_patches=4):
    """Write the comparison table to `out` (Markdown), its trimap plot beside it, and optionally `figure`; return the paths.

    A partial sweep (results.json "unfinished") contributes its finished settings,
    and the table ends with the settings it still lacks.

    The trimap plot, OUT_STEM_trimap.png, is written when some run has trimap figures.
    """
    from .figures import trimap_figure

    out = Path(out)
    check_writable(out.parent)
    runs, unfinished = read_runs(outs)
    written = [out]
    partial = [f"- `{folder}` is a partial sweep; not finished yet: {', '.join(names)}\n" for folder, names in unfinished.items()]
    write_text(out, f"# Comparison of {len(runs)} runs\n\n{compare_table(runs)}" + "".join(partial))
    trimaps = {label: results["summary"]["trimap_miou"] for label, _, results in runs if "trimap_miou" in results["summary"]}
    if trimaps:
        written.append(out.with_name(f"{out.stem}_trimap.png"))
        trimap_figure(written[-1], trimaps, title="test mIoU near and away from boundaries")
    if figure:
        predictions_figure(runs, figure, data, num_patches)
        written.append(Path(figure))
    return written
