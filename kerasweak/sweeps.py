"""Sweeps: one run per value of a recipe key, or per labelled table of overrides, then one table and plots.

`parameter = "section.key"` names the recipe setting swept, e.g. "degrade.noise"
(paper Table 3) or "sizes.pixel_annotated" (the object-size paper's Fig. 7).
Without a parameter, each value is a table of recipe sections to override with
a `label` (an ablation: [[sweep.values]] label = "kl", train.loss = "kl").
"""

import json
import re
from pathlib import Path

import numpy as np

from .errors import KerasweakError
from .io import check_writable, write_json, write_text
from .recipe import merge, recipe_sections, normalise_recipe
from .methods import get_method
from .reporting import (detail_tables, markdown_table, score_columns, setting_name, shown_classes, sweep_key, table_notes,
                        value_text)
from .run_folder import config_fingerprint, label_files
from .training import csv_column

SETTING_LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")


def setting_overrides(recipe, value, section, key):
    """The override tables of one sweep value: {section: {key: value}}, or a labelled table's sections."""
    if section is None:
        return {name: table for name, table in value.items() if name != "label"}
    return {section: {key: value}}


def sweep_settings(recipe):
    """The [sweep] section checked: parameter "section.key" and its values, or labelled override tables.

    Every setting's recipe is checked too, so a bad value fails before any training.
    Returns (sweep, section, key, setting recipes); section is None for override tables.
    """
    sweep, where = recipe["sweep"], recipe["name"]
    sections = recipe_sections(get_method(recipe["method"]))
    if not sweep["values"]:
        raise KerasweakError("[sweep] values must be a non-empty list", where)
    if sweep["parameter"] is not None or not all(isinstance(value, dict) for value in sweep["values"]):
        section, _, key = str(sweep["parameter"]).partition(".")
        if section not in sections or section == "sweep" or not key:
            raise KerasweakError(f"[sweep] parameter must be 'section.key' with section one of "
                                 f"{', '.join(s for s in sections if s != 'sweep')}, got {sweep['parameter']!r}", where)
    else:
        _check_labels(recipe, sweep["values"])
        section, key = None, sweep_key(sweep)
    if len(sweep["seeds"] or sweep["values"]) != len(sweep["values"]):
        raise KerasweakError("[sweep] seeds must give one seed count per value", where)
    base = {name: value for name, value in recipe.items() if name != "sweep"}
    subs = []
    for value in sweep["values"]:
        name = f"{where}/{setting_name(key, value)}"
        subs.append(normalise_recipe(merge(base, {"name": name, **setting_overrides(recipe, value, section, key)}), name))
    return sweep, section, key, subs


def _check_labels(recipe, values):
    """[sweep] values without a parameter: tables of recipe sections to override, each with a distinct, folder-safe label."""
    for value in values:
        if not (isinstance(value.get("label"), str) and SETTING_LABEL.fullmatch(value["label"])):
            raise KerasweakError(f"[sweep] without a parameter, each value must be a table with a label of letters, digits, "
                                 f"'_.+-', got {value!r}", recipe["name"])
    labels = [value["label"] for value in values]
    if len(set(labels)) != len(labels):
        raise KerasweakError(f"[sweep] value labels must differ, got {', '.join(labels)}", recipe["name"])


def check_same_sweep(path, config, key):
    """check_same_config for a sweep's OUT, which may gain settings; its config.json then lists them all.

    Dropping or changing a setting is refused once a run has used it (its OUT/<setting>/
    exists); one never started may be redefined. Each setting's own folder checks its
    training settings as before.
    """
    def without_settings(fingerprint):
        sweep = {k: v for k, v in fingerprint["recipe"]["sweep"].items() if k not in ("values", "seeds")}
        return {**fingerprint, "recipe": {**fingerprint["recipe"], "sweep": sweep}}

    if not path.exists():
        return write_json(path, config)
    earlier, now = config_fingerprint(json.loads(path.read_text())), config_fingerprint(config)
    if without_settings(earlier) != without_settings(now):
        raise KerasweakError("holds a run with a different recipe or options; use another --out", path.parent)
    dropped = [setting_name(key, value) for value in earlier["recipe"]["sweep"]["values"]
               if value not in now["recipe"]["sweep"]["values"]]
    used = [name for name in dropped if (path.parent / name).exists()]
    if used:
        raise KerasweakError(f"holds runs of sweep settings this recipe no longer has ({', '.join(used)}); use another --out",
                             path.parent)
    if earlier["recipe"]["sweep"] != now["recipe"]["sweep"]:
        write_json(path, config)


def run_sweep(recipe, run_one, out=None, seeds=1, max_samples=None, echo=print, sizes_csv=None, keypoints=None):
    """`run_one(recipe, out, seeds)` (the runner's run of one recipe) per sweep setting, then a table and plots.

    Setting key = value runs in OUT/<key>_<value>/ with the usual outputs, an
    override table in OUT/<label>/, with max(`seeds`, [sweep] seeds[i]) seeds;
    a finished setting (setting_finished) is skipped, an unfinished one completed.
    Several processes running the same sweep share its settings' seeds (claims);
    the last to finish writes the full table, and a partial one (marked so) is
    written before each setting trained after a finished one, with the seeds so
    far of a setting asked for more (its Seeds cell "1 of 2"). OUT/results.md is
    one row per setting (the paper's Table 3/4 format, F1 and accuracy added);
    [sweep] plots name the figures (the first is OUT/sweep.png, the others
    OUT/sweep_<plot>.png); OUT/results.json has every summary.
    """
    sweep, section, key, subs = sweep_settings(recipe)
    out = Path(out or Path("runs") / recipe["name"])
    check_writable(out)
    config = {"recipe": recipe, "max_samples": max_samples, **label_files(sizes_csv, keypoints)}
    check_same_sweep(out / "config.json", config, key)
    names = [setting_name(key, value) for value in sweep["values"]]
    n_seeds = [max(seeds, minimum) for minimum in (sweep["seeds"] or [1] * len(names))]
    done = {}

    def load_if_finished(name, n):
        if name not in done and setting_finished(out / name, n):
            done[name] = json.loads((out / name / "results.json").read_text())
        return name in done

    for name in [name for name, n in zip(names, n_seeds) if load_if_finished(name, n)]:
        echo(f"{name}: finished earlier, skipping")
    for sub, name, n in zip(subs, names, n_seeds):
        if load_if_finished(name, n):  # finished earlier, or meanwhile by another process
            continue
        pending = fewer_seeds(out, names, n_seeds)
        if done or pending:  # the table so far, before a run that may take hours
            _write_sweep_outputs(out, recipe, sweep, section, key, config, names, done, pending)
        echo(f"{name}: running {n} seed{'s' if n > 1 else ''}")
        results = run_one(sub, out / name, n)
        if results is not None:  # None: some of its seeds train in another process
            done[name] = results
    unfinished = [name for name in names if name not in done]
    if unfinished:
        echo(f"{recipe['name']}: {', '.join(unfinished)} still training in other processes; "
             "the last to finish writes the full table")
    pending = fewer_seeds(out, names, n_seeds)
    results = _write_sweep_outputs(out, recipe, sweep, section, key, config, names, done, pending) if done or pending else None
    return None if unfinished else results


def fewer_seeds(out, names, n_seeds):
    """{name: (results, seeds asked)} of the settings whose results.json holds fewer seeds than asked (a sweep whose
    [sweep] seeds grew after they ran): shown in a partial table with their seeds so far."""
    found = {}
    for name, n in zip(names, n_seeds):
        path = out / name / "results.json"
        results = json.loads(path.read_text()) if path.exists() else None
        if results is not None and results["seeds"] < n:
            found[name] = (results, n)
    return found


def _write_sweep_outputs(out, recipe, sweep, section, key, config, names, done, pending=None):
    """OUT/results.md, results.json and the plots of the finished settings (`done`: {name: results}), marked partial
    when some of `names` are not among them; `pending` ({name: (results, seeds asked)}, from fewer_seeds) adds rows
    of unfinished settings with their seeds so far, marked by seeds_asked."""
    pending = {name: entry for name, entry in (pending or {}).items() if name not in done}
    settings = []
    for value, name in zip(sweep["values"], names):
        results, asked = (done[name], None) if name in done else pending.get(name, (None, None))
        if results is not None:
            settings.append({"value": value, "seeds": results["seeds"], "summary": results["summary"],
                             "proportion_change": results["proportion_change"],
                             **({"seeds_asked": asked} if asked else {})})
    unfinished = [name for name in names if name not in done]
    paper = {str(k): v for k, v in sweep.get("paper_miou", {}).items()}
    heading = sweep["heading"] or key
    logs = _finetune_logs(out, key, settings) if "finetune_curves" in sweep["plots"] else None
    for index, plot in enumerate(sweep["plots"]):
        _sweep_plot(plot, out / ("sweep.png" if index == 0 else f"sweep_{plot}.png"), recipe, settings, heading, paper, logs)
    results = {"recipe": recipe["name"], "sweep": sweep["parameter"], "settings": settings, "config": config,
               **({"unfinished": unfinished} if unfinished else {})}
    write_json(out / "results.json", results)
    tables = [sweep_table(recipe, settings, paper, heading, show_label_change=section == "degrade")]
    if unfinished:
        so_far = [f"{name} ({pending[name][0]['seeds']} of {pending[name][1]} seeds shown)" if name in pending else name
                  for name in unfinished]
        tables.append(f"**Partial:** {len(done)} of {len(names)} settings. Not finished yet: "
                      f"{', '.join(so_far)}; rerunning the recipe's command trains them and completes this table.\n")
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
            + [f"{s['seeds']} of {s['seeds_asked']}" if "seeds_asked" in s else s["seeds"],
               f"{s['summary']['train_seconds']['mean']:.0f}"] for s in settings]
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

