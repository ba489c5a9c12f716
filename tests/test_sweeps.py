"""Recipe runner: results tables, degraded proportions and sensitivity-study sweeps (tiny runs on fake data)."""

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
