"""Recipe runner: results tables, degraded proportions and sensitivity-study sweeps (tiny runs on fake data)."""

import itertools
import json

import numpy as np
import pytest

from kerasweak.errors import KerasweakError
from kerasweak.runner import aggregate, degrade_proportions, load_recipe, results_table, run_recipe
from conftest import TINY_SETTINGS
from test_cli import kerasweak

TINY_SWEEP = 'extends = "dubai-spss-{kind}"\nname = "tiny-sweep"\n' + TINY_SETTINGS + "[sweep]\nvalues = {values}\n"


def test_a_two_value_noise_sweep_writes_each_setting_the_table_and_plot_and_resumes(tmp_path, fake_dubai):
    recipe = tmp_path / "tiny-sweep.toml"
    recipe.write_text(TINY_SWEEP.format(kind="noise", values="[0, 10]"))
    out = tmp_path / "out"
    result = kerasweak("recipe", recipe, "--data", fake_dubai, "--out", out, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for setting in ("noise_0", "noise_10"):
        assert (out / setting / "results.md").exists() and (out / setting / "model" / "kerasweak.json").exists()
    assert json.loads((out / "noise_10" / "config.json").read_text())["recipe"]["degrade"] == {"mode": "softmax", "seed": 0, "noise": 10}
    table = (out / "results.md").read_text().splitlines()
    assert table[2].startswith("| Noise σ (%) | Mean IoU | mIoU (5 classes) | F1 Building |")
    assert table[2].endswith("| Mean accuracy | Paper mIoU | Label change (L1) | Seeds | Seconds/seed |")
    assert table[4].startswith("| 0 |") and "| 45 |" in table[4] and table[5].startswith("| 10 |") and "| 41 |" in table[5]
    assert (out / "sweep.png").stat().st_size > 0
    summary = json.loads((out / "results.json").read_text())
    assert [s["value"] for s in summary["settings"]] == [0, 10] and summary["settings"][0]["proportion_change"] > 0

    rerun = kerasweak("recipe", recipe, "--data", fake_dubai, "--out", out, cwd=tmp_path)
    assert rerun.returncode == 0, rerun.stderr
    assert rerun.stdout.count("finished earlier, skipping") == 2 and ": running" not in rerun.stdout


def test_a_sweep_rerun_completes_unfinished_settings_and_skips_finished_ones(tmp_path, fake_dubai):
    """A setting missing a seed's metrics.json, or its results.json, is run again; its trained seed is not retrained."""
    recipe = tmp_path / "tiny-sweep.toml"
    recipe.write_text(TINY_SWEEP.format(kind="noise", values="[0, 10]"))
    out = tmp_path / "out"

    def rerun():
        lines = []
        run_recipe(str(recipe), data=fake_dubai, out=out, verbose=0, echo=lines.append)
        return lines

    rerun()
    log_rows = (out / "noise_10" / "seed_0" / "log.csv").read_text()
    (out / "noise_10" / "seed_0" / "metrics.json").unlink()
    lines = rerun()
    assert "noise_0: finished earlier, skipping" in lines and "noise_10: running 1 seed" in lines
    assert (out / "noise_10" / "seed_0" / "metrics.json").exists()
    assert (out / "noise_10" / "seed_0" / "log.csv").read_text() == log_rows  # best weights reloaded, no epoch trained

    (out / "noise_0" / "results.json").unlink()
    lines = rerun()
    assert "noise_0: running 1 seed" in lines and "noise_10: finished earlier, skipping" in lines
    assert "seed 0: finished earlier, skipping" in lines and (out / "noise_0" / "results.json").exists()
    assert [s["value"] for s in json.loads((out / "results.json").read_text())["settings"]] == [0, 10]
    assert [line for line in rerun() if line.startswith("noise_")] == ["noise_0: finished earlier, skipping",
                                                                       "noise_10: finished earlier, skipping"]


def test_a_sweep_writes_the_table_so_far_before_training_a_setting_and_the_full_table_after(tmp_path, fake_dubai):
    """A long sweep's finished settings are tabulated (marked partial) before the next setting starts training."""
    recipe = tmp_path / "tiny-sweep.toml"
    recipe.write_text(TINY_SWEEP.format(kind="noise", values="[0]"))
    out = tmp_path / "out"
    run_recipe(str(recipe), data=fake_dubai, out=out, verbose=0, echo=lambda line: None)
    assert "Partial" not in (out / "results.md").read_text()
    recipe.write_text(TINY_SWEEP.format(kind="noise", values="[0, 10, 20]"))
    seen = {}

    def echo(line):
        if line.endswith(": running 1 seed"):
            seen[line.partition(":")[0]] = (out / "results.md").read_text()

    run_recipe(str(recipe), data=fake_dubai, out=out, verbose=0, echo=echo)
    assert "**Partial:** 1 of 3 settings. Not finished yet: noise_10, noise_20;" in seen["noise_10"]
    assert _row_values(seen["noise_10"]) == ["0"]
    assert "**Partial:** 2 of 3 settings. Not finished yet: noise_20;" in seen["noise_20"]
    final = (out / "results.md").read_text()
    assert "Partial" not in final and _row_values(final) == ["0", "10", "20"]
    assert "unfinished" not in json.loads((out / "results.json").read_text())


def _row_values(table):
    """The first cell of each row of a results.md's first table: the swept values it holds."""
    lines = table.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    rows = itertools.takewhile(lambda line: line.startswith("|"), lines[start + 2:])
    return [row.split(" | ")[0][2:] for row in rows]


def _seed_metrics(class_names, extra=()):
    scores = {c: 0.5 for c in class_names}
    return [{"miou": 0.5, "accuracy": 0.9, "train_seconds": 1.0, **{k: 0.4 for k in extra}, "iou": scores, "f1": scores}]


@pytest.mark.parametrize("recipe, class_names, extra, columns", [
    ("dubai-spss", ["Building", "Land", "Road", "Vegetation", "Water", "Unlabeled"], ["miou_5"],
     "Mean IoU | mIoU (5 classes) | F1 Building | F1 Land | F1 Road | F1 Vegetation | F1 Water | Mean accuracy"),
    ("em-benchmark", ["Background", "Mitochondria"], [], "Mean IoU | F1 Background | F1 Mitochondria | Mean accuracy"),
    ("em-spss", ["Background", "Mitochondria"], [], "Mean IoU | F1 Background | F1 Mitochondria | Mean accuracy"),
])
def test_results_table_columns_follow_the_papers_table(recipe, class_names, extra, columns):
    recipe = load_recipe(recipe)
    table = results_table(recipe, aggregate(_seed_metrics(class_names, extra), class_names), class_names, 1).splitlines()
    assert table[0] == f"| Model | {columns} | Seconds/seed |"
    if "paper" in recipe:
        assert table[3].startswith(f"| {recipe['paper']['label']} | {recipe['paper']['miou']} |")
    assert recipe["notes"] in table


def test_degrade_section_changes_only_what_it_names():
    proportions = np.random.default_rng(0).dirichlet(np.ones(4), size=20).astype(np.float32)
    recipe = {"name": "r"}
    np.testing.assert_array_equal(degrade_proportions(recipe, proportions), proportions)
    clipped = degrade_proportions({**recipe, "degrade": {"noise": 0, "mode": "clip"}}, proportions)
    np.testing.assert_allclose(clipped, proportions, rtol=1e-6)
    clustered = degrade_proportions({**recipe, "degrade": {"clusters": 3}}, proportions)
    assert len(np.unique(clustered, axis=0)) == 3


@pytest.mark.parametrize("degrade, message", [
    ({"clusters": 50}, "clusters must be an integer from 1 to the 20"),
    ({"noise": -5}, "noise must be a percentage >= 0"),
    ({"noise": 5, "mode": "round"}, "mode must be one of softmax, clip"),
    ({"sigma": 5}, "unknown keys sigma"),
])
def test_bad_degrade_settings_are_one_line_errors(degrade, message):
    with pytest.raises(KerasweakError, match=message):
        degrade_proportions({"name": "r", "degrade": degrade}, np.full((20, 2), 0.5, np.float32))


def test_a_sweep_over_an_unknown_parameter_is_refused(tmp_path):
    recipe = {**load_recipe("dubai-spss-noise"), "sweep": {"parameter": "sigma", "values": [1]}}
    with pytest.raises(KerasweakError, match="parameter must be 'section.key' with section one of degrade, .*, got 'sigma'"):
        run_recipe(recipe, out=tmp_path)


def test_a_two_setting_lambda_sweep_trains_each_setting_with_its_lambdas_and_tabulates_them(edge_runs):
    import keras

    out = edge_runs["dubai-semeda-lambdas"]
    for setting, lambdas in (("lambdas_0-0-0", (0.0, 0.0, 0.0)), ("lambdas_4-2-0", (4.0, 2.0, 0.0))):
        assert keras.saving.load_model(out / setting / "seed_0" / "model.keras").loss.lambdas == lambdas
        assert (out / setting / "semeda-aerial-dubai-6classes.keras").exists() and (out / setting / "trimap.png").exists()
    table = (out / "results.md").read_text().splitlines()
    assert table[2].startswith("| λ1, λ2, λ3 | Mean IoU |") and table[2].endswith("| E-measure | Seeds | Seconds/seed |")
    assert table[4].startswith("| 0, 0, 0 |") and table[5].startswith("| 4, 2, 0 |")
    assert "| λ1, λ2, λ3 = 4, 2, 0 | non-boundary |" in "\n".join(table)
    settings = json.loads((out / "results.json").read_text())["settings"]
    assert [s["value"] for s in settings] == [[0, 0, 0], [4, 2, 0]] and (out / "sweep.png").stat().st_size > 0


TINY_ABLATION = 'extends = "dubai-spss-ablation"\nname = "tiny-ablation"\n' + TINY_SETTINGS + """
[sweep]
values = [{ label = "baseline" }, { label = "kl-smooth", train = { loss = "kl", smoothness = 0.1, smoothness_sigma = 20 } }]
"""


def test_a_sweep_over_labelled_override_tables_runs_each_in_its_labels_folder(tmp_path, fake_dubai):
    from kerasweak.compare import read_runs

    recipe = tmp_path / "tiny-ablation.toml"
    recipe.write_text(TINY_ABLATION)
    out = tmp_path / "out"
    results = run_recipe(str(recipe), data=fake_dubai, out=out, verbose=0, echo=lambda *_: None)
    assert [s["value"]["label"] for s in results["settings"]] == ["baseline", "kl-smooth"] and results["sweep"] is None
    train = json.loads((out / "kl-smooth" / "config.json").read_text())["recipe"]["train"]
    assert (train["loss"], train["smoothness"], train["smoothness_sigma"]) == ("kl", 0.1, 20)
    assert json.loads((out / "baseline" / "config.json").read_text())["recipe"]["train"]["loss"] == "mse"
    import keras

    assert keras.saving.load_model(out / "kl-smooth" / "seed_0" / "model.keras").get_layer("smoothness").sigma == 20
    table = (out / "results.md").read_text().splitlines()
    assert table[2].startswith("| Setting | Mean IoU |") and table[4].startswith("| baseline |") and table[5].startswith("| kl-smooth |")
    runs, unfinished = read_runs([out])
    assert unfinished == {}
    assert [label for label, _, _ in runs] == ["SPSS ablation (kerasweak), Setting = baseline",
                                               "SPSS ablation (kerasweak), Setting = kl-smooth"]


@pytest.mark.parametrize("values, message", [
    ([{"train": {"loss": "kl"}}], "without a parameter, each value must be a table with a label"),
    ([{"label": "a b"}], "must be a table with a label of letters"),
    ([{"label": "a", "optimiser": {"name": "sgd"}}], "value a: optimiser must be tables of a section among degrade, "),
    ([{"label": "a", "train": 3}], "value a: train must be tables"),
    ([{"label": "a"}, {"label": "a"}], "labels must differ, got a, a"),
])
def test_bad_override_tables_are_one_line_errors(tmp_path, values, message):
    recipe = {**load_recipe("dubai-spss-ablation"), "sweep": {"values": values}}
    with pytest.raises(KerasweakError, match=message):
        run_recipe(recipe, out=tmp_path)


@pytest.mark.parametrize("parameter", ["train.loss", "train.smoothness", "train.smoothness_sigma", "train.self_train_rounds",
                                       "train.self_train_confidence", "train.self_train_epochs", "train.lr_schedule",
                                       "train.augment", "train.mosaic", "model.base_filters"])
def test_every_spss_option_can_be_a_sweep_parameter(parameter):
    from kerasweak.runner import _sweep_settings

    recipe = {**load_recipe("dubai-spss"), "sweep": {"parameter": parameter, "values": [1]}}
    assert _sweep_settings(recipe)[1:] == tuple(parameter.split("."))
