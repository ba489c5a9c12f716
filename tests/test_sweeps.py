"""Recipe runner: results tables, degraded proportions and sensitivity-study sweeps (tiny runs on fake data)."""

import json

import numpy as np
import pytest

from kerasweak.data import noisy_proportions, read_dubai, split_indices
from kerasweak.errors import KerasweakError
from kerasweak.data import degrade_proportions
from kerasweak.recipe import load_recipe, normalise_recipe, with_overrides
from kerasweak.reporting import aggregate, results_table
from kerasweak.runner import run_recipe
from helpers import kerasweak, row_values, write_recipe, write_sweep


@pytest.mark.slow
def test_a_two_value_noise_sweep_writes_each_setting_the_table_and_plot_and_resumes(tmp_path, fake_dubai):
    recipe = write_sweep(tmp_path / "tiny-sweep.toml", "noise", [0, 10])
    out = tmp_path / "out"
    result = kerasweak("recipe", recipe, "--data", fake_dubai, "--out", out, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for setting in ("noise_0", "noise_10"):
        assert (out / setting / "results.md").exists() and (out / setting / "model" / "kerasweak.json").exists()
    assert json.loads((out / "noise_10" / "config.json").read_text())["recipe"]["degrade"] == {"clusters": None, "mode": "softmax", "seed": 0, "noise": 10}
    table = (out / "results.md").read_text().splitlines()
    assert table[2].startswith("| Noise σ (%) | Mean IoU | mIoU (5 classes) | F1 Building |")
    assert table[2].endswith("| Mean accuracy | Paper mIoU | Label change (L1) | Seeds | Seconds/seed |")
    assert table[4].startswith("| 0 |") and "| 45 |" in table[4] and table[5].startswith("| 10 |") and "| 41 |" in table[5]
    assert (out / "sweep.png").stat().st_size > 0
    summary = json.loads((out / "results.json").read_text())
    assert [s["value"] for s in summary["settings"]] == [0, 10] and summary["settings"][0]["proportion_change"] > 0
    proportions = read_dubai(fake_dubai, patch_size=32).proportions
    fit = proportions[np.concatenate(split_indices(len(proportions))[:2])]  # training and validation patches, in order
    for setting in summary["settings"]:  # mean L1 change of their labels: eq. 5 with softmax, degrade seed 0
        expected = np.abs(noisy_proportions(fit, setting["value"] / 100, 0, "softmax") - fit).sum(axis=1).mean()
        assert setting["proportion_change"] == pytest.approx(float(expected), rel=1e-6)

    rerun = kerasweak("recipe", recipe, "--data", fake_dubai, "--out", out, cwd=tmp_path)
    assert rerun.returncode == 0, rerun.stderr
    assert rerun.stdout.count("finished earlier, skipping") == 2 and ": running" not in rerun.stdout


@pytest.mark.slow
def test_a_sweep_rerun_completes_unfinished_settings_and_skips_finished_ones(tmp_path, fake_dubai):
    """A setting missing a seed's metrics.json, or its results.json, is run again; its trained seed is not retrained."""
    recipe = write_sweep(tmp_path / "tiny-sweep.toml", "noise", [0, 10])
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


@pytest.mark.slow
def test_a_sweep_writes_the_table_so_far_before_training_a_setting_and_the_full_table_after(tmp_path, fake_dubai):
    """A long sweep's finished settings are tabulated (marked partial) before the next setting starts training."""
    recipe = write_sweep(tmp_path / "tiny-sweep.toml", "noise", [0])
    out = tmp_path / "out"
    run_recipe(str(recipe), data=fake_dubai, out=out, verbose=0, echo=lambda line: None)
    assert "Partial" not in (out / "results.md").read_text()
    write_sweep(recipe, "noise", [0, 10, 20])
    seen = {}

    def echo(line):
        if line.endswith(": running 1 seed"):
            seen[line.partition(":")[0]] = (out / "results.md").read_text()

    run_recipe(str(recipe), data=fake_dubai, out=out, verbose=0, echo=echo)
    assert "**Partial:** 1 of 3 settings. Not finished yet: noise_10, noise_20;" in seen["noise_10"]
    assert row_values(seen["noise_10"]) == ["0"]
    assert "**Partial:** 2 of 3 settings. Not finished yet: noise_20;" in seen["noise_20"]
    final = (out / "results.md").read_text()
    assert "Partial" not in final and row_values(final) == ["0", "10", "20"]
    assert "unfinished" not in json.loads((out / "results.json").read_text())


@pytest.mark.slow
def test_a_setting_asked_for_more_seeds_shows_its_seeds_so_far_in_the_partial_table(tmp_path, fake_dubai):
    """[sweep] seeds raised after a setting ran: until its new seed finishes, the table keeps its row, marked."""
    recipe = write_sweep(tmp_path / "tiny-sweep.toml", "noise", [0, 10])
    out = tmp_path / "out"
    run_recipe(str(recipe), data=fake_dubai, out=out, verbose=0, echo=lambda line: None)
    write_recipe(recipe, extends="dubai-spss-noise", name="tiny-sweep", train={"epochs": 1},
                 sweep={"values": [0, 10], "seeds": [2, 1]})
    seen = {}

    def echo(line):
        if line == "noise_0: running 2 seeds":
            seen["table"] = (out / "results.md").read_text()
            seen["json"] = json.loads((out / "results.json").read_text())

    run_recipe(str(recipe), data=fake_dubai, out=out, verbose=0, echo=echo)
    assert row_values(seen["table"]) == ["0", "10"]
    rows = [line for line in seen["table"].splitlines() if line.startswith("| 0 |") or line.startswith("| 10 |")]
    assert rows[0].split(" | ")[-2] == "1 of 2" and rows[1].split(" | ")[-2] == "1"
    assert "**Partial:** 1 of 2 settings. Not finished yet: noise_0 (1 of 2 seeds shown);" in seen["table"]
    assert [s.get("seeds_asked") for s in seen["json"]["settings"]] == [2, None]
    assert seen["json"]["unfinished"] == ["noise_0"]
    final = (out / "results.md").read_text()
    assert "Partial" not in final and "of 2" not in final
    assert [s["seeds"] for s in json.loads((out / "results.json").read_text())["settings"]] == [2, 1]


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
    if recipe["paper"]:
        assert table[3].startswith(f"| {recipe['paper']['label']} | {recipe['paper']['miou']} |")
    assert recipe["notes"] in table


def test_degrade_section_changes_only_what_it_names():
    proportions = np.random.default_rng(0).dirichlet(np.ones(4), size=20).astype(np.float32)
    recipe = load_recipe("dubai-spss")
    np.testing.assert_array_equal(degrade_proportions(recipe["degrade"], proportions), proportions)
    clipped = degrade_proportions(with_overrides(recipe, {"degrade": {"noise": 0, "mode": "clip"}})["degrade"], proportions)
    np.testing.assert_allclose(clipped, proportions, rtol=1e-6)
    clustered = degrade_proportions(with_overrides(recipe, {"degrade": {"clusters": 3}})["degrade"], proportions)
    assert len(np.unique(clustered, axis=0)) == 3


@pytest.mark.parametrize("degrade, message", [
    ({"clusters": 50}, r"\[degrade\] clusters must be an integer from 1 to the 20"),
    ({"noise": -5}, r"\[degrade\] noise must be >= 0, got -5"),
    ({"noise": 5, "mode": "round"}, r"\[degrade\] mode must be one of softmax, clip, got 'round'"),
    ({"sigma": 5}, r"\[degrade\] sigma: unknown key; known: clusters, noise, mode, seed"),
])
def test_bad_degrade_settings_are_one_line_errors(degrade, message):
    with pytest.raises(KerasweakError, match=message):
        settings = with_overrides(load_recipe("dubai-spss"), {"degrade": degrade})["degrade"]
        degrade_proportions(settings, np.full((20, 2), 0.5, np.float32))


def test_a_sweep_over_an_unknown_parameter_is_refused(tmp_path):
    recipe = {**load_recipe("dubai-spss-noise"), "sweep": {"parameter": "sigma", "values": [1]}}
    with pytest.raises(KerasweakError, match="parameter must be 'section.key' with section one of data, .*degrade.*, got 'sigma'"):
        run_recipe(recipe, out=tmp_path)


@pytest.mark.slow
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


@pytest.mark.slow
def test_a_sweep_over_labelled_override_tables_runs_each_in_its_labels_folder(tmp_path, fake_dubai):
    from kerasweak.compare import read_runs

    recipe = write_recipe(tmp_path / "tiny-ablation.toml", extends="dubai-spss-ablation", train={"epochs": 1}, sweep={"values": [
        {"label": "baseline"}, {"label": "kl-smooth", "train": {"loss": "kl", "smoothness": 0.1, "smoothness_sigma": 20}}]})
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
    ([{"label": "a", "optimiser": {"name": "sgd"}}], "dubai-spss-ablation/a: optimiser: unknown section; known: name, "),
    ([{"label": "a", "train": 3}], r"dubai-spss-ablation/a: \[train\] must be a table, got 3"),
    ([{"label": "a"}, {"label": "a"}], "labels must differ, got a, a"),
])
def test_bad_override_tables_are_one_line_errors(tmp_path, values, message):
    recipe = {**load_recipe("dubai-spss-ablation"), "sweep": {"values": values}}
    with pytest.raises(KerasweakError, match=message):
        run_recipe(recipe, out=tmp_path)


@pytest.mark.parametrize("parameter, value", [
    ("train.loss", "kl"), ("train.smoothness", 0.1), ("train.smoothness_sigma", 10), ("train.self_train_rounds", 1),
    ("train.self_train_confidence", 0.8), ("train.self_train_epochs", 2), ("train.lr_schedule", "cosine"),
    ("train.augment", ["colour"]), ("train.mosaic", 2), ("model.base_filters", 8)])
def test_every_spss_option_can_be_a_sweep_parameter(parameter, value):
    from kerasweak.sweeps import sweep_settings

    recipe = {**load_recipe("dubai-spss"), "sweep": {"parameter": parameter, "values": [value]}}
    sweep, section, key, subs = sweep_settings(normalise_recipe(recipe))
    assert (section, key) == tuple(parameter.split(".")) and subs[0][section][key] == value
