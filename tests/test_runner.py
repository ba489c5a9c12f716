import json

import pytest

from kerasweak.errors import KerasweakError
from kerasweak.recipe import TRAIN, list_recipes, load_recipe
from kerasweak.run_folder import check_same_config
from kerasweak.sweeps import check_same_sweep


def test_extends_inherits_and_overrides():
    spss, benchmark = load_recipe("dubai-spss"), load_recipe("dubai-benchmark")
    assert benchmark["method"] == "pixel" and spss["method"] == "spss"
    assert {key: benchmark["train"][key] for key in TRAIN} == {key: spss["train"][key] for key in TRAIN}
    assert benchmark["data"] == spss["data"] and "smoothness" in spss["train"] and "smoothness" not in benchmark["train"]
    assert benchmark["paper"]["miou"] == "52.3 ± 1.3"


def test_every_packaged_recipe_loads_with_its_papers_protocol():
    for name, description in list_recipes():
        recipe = load_recipe(name)
        if recipe["train"]["lr_schedule"] == "warmup-cosine":  # the fast protocol (issue 31), below
            continue
        assert description and recipe["train"]["learning_rate"] == 1e-3
        if recipe["dataset"] == "hippocampus":  # batch 32 (issue 4's benchmark), size settings checked
            assert recipe["train"]["batch_size"] == 32 and recipe["sizes"]["num_samples"] >= 1
        else:  # semantic proportions paper; em-spss-plus waits longer on its keypoint-driven validation loss (its comment)
            waits = name in ("em-spss-plus", "em-spss-plus-blocks", "em-points", "em-benchmark-blocks")
            assert recipe["train"]["batch_size"] == 16 and recipe["train"]["patience"] == (20 if waits else 10)


def test_the_fast_protocol_is_dubai_spss_with_another_training_schedule():
    fast, spss = load_recipe("dubai-spss-fast"), load_recipe("dubai-spss")
    schedule = {"lr_schedule", "learning_rate", "warmup_epochs", "epochs", "patience", "validation_every"}
    assert {k: v for k, v in fast.items() if k not in ("name", "description", "label", "train", "evaluation")} == \
        {k: v for k, v in spss.items() if k not in ("name", "description", "label", "train", "evaluation")}
    assert fast["evaluation"] == {**spss["evaluation"], "reflect_context": 32}  # one more row, the same scores
    assert {k for k in spss["train"] if fast["train"][k] != spss["train"][k]} <= schedule
    for variant, changes in {"dubai-spss-fast-coarse": {"epochs", "patience", "coarse_epochs"},
                             "dubai-spss-fast-coarse40": {"epochs", "patience", "coarse_epochs"}}.items():
        recipe = load_recipe(variant)
        assert {k for k in fast["train"] if recipe["train"][k] != fast["train"][k]} == changes
        assert {k: v for k, v in recipe.items() if k not in ("name", "description", "label", "train")} == \
            {k: v for k, v in fast.items() if k not in ("name", "description", "label", "train")}
    reflect = load_recipe("dubai-spss-fast-reflect")
    assert reflect["model"] == {**fast["model"], "padding": "reflect"} and reflect["train"] == fast["train"]
    tiles = load_recipe("dubai-spss-tiles")  # the honest split's counterpart of dubai-spss-fast (issue 32)
    assert tiles["data"] == {**fast["data"], "split": "image"} and tiles["train"] == fast["train"]
    smooth_tiles, best = load_recipe("dubai-spss-tiles-smoothness"), load_recipe("dubai-spss-best")
    assert smooth_tiles["data"] == tiles["data"] and smooth_tiles["train"] == \
        {**tiles["train"], "smoothness": best["train"]["smoothness"], "smoothness_sigma": best["train"]["smoothness_sigma"]}


def test_resume_check_ignores_descriptions_but_not_training_settings(tmp_path):
    recipe = load_recipe("dubai-spss")
    config = {"recipe": recipe, "max_samples": None, "patches": 1647}
    check_same_config(tmp_path / "config.json", config)
    relabelled = {**config, "recipe": {**recipe, "label": "renamed", "description": "new words"}}
    check_same_config(tmp_path / "config.json", relabelled)
    retrained = {**config, "recipe": {**recipe, "train": {**recipe["train"], "learning_rate": 1e-4}}}
    with pytest.raises(KerasweakError, match="different recipe or options"):
        check_same_config(tmp_path / "config.json", retrained)
    with_new_unset_option = {**config, "sizes_csv": None}  # an option added after the folder was written
    check_same_config(tmp_path / "config.json", with_new_unset_option)
    with pytest.raises(KerasweakError, match="different recipe or options"):
        check_same_config(tmp_path / "config.json", {**config, "sizes_csv": "sizes.csv"})


def test_a_sweep_folder_may_gain_settings_but_not_lose_or_change_those_it_ran(tmp_path):
    recipe = load_recipe("dubai-spss-ablation")
    sweep = recipe["sweep"]
    config = {"recipe": {**recipe, "sweep": {**sweep, "values": sweep["values"][:2]}}, "max_samples": None}
    path = tmp_path / "config.json"
    check_same_sweep(path, config, None)
    extended = {**config, "recipe": recipe}
    check_same_sweep(path, extended, None)
    assert [v["label"] for v in json.loads(path.read_text())["recipe"]["sweep"]["values"]] == [v["label"] for v in sweep["values"]]
    (tmp_path / sweep["values"][2]["label"]).mkdir()  # a run has used the third setting
    with pytest.raises(KerasweakError, match=f"settings this recipe no longer has \\({sweep['values'][2]['label']}\\)"):
        check_same_sweep(path, config, None)
    redefined = [*sweep["values"][:-1], {**sweep["values"][-1], "train": {"loss": "kl"}}]  # the last never started
    check_same_sweep(path, {**extended, "recipe": {**recipe, "sweep": {**sweep, "values": redefined}}}, None)
    assert json.loads(path.read_text())["recipe"]["sweep"]["values"][-1]["train"] == {"loss": "kl"}
    retrained = {**extended, "recipe": {**recipe, "train": {**recipe["train"], "learning_rate": 1e-4}}}
    with pytest.raises(KerasweakError, match="different recipe or options"):
        check_same_sweep(path, retrained, None)


def test_finished_seed_gains_evaluation_figures_asked_for_later(tmp_path):
    """A seed finished before [evaluation] asked for E-measure/trimap/calibration/flips/context gets them from its model.keras, once."""
    from kerasweak.data import synthetic_patches
    from kerasweak.models import build_unet
    from kerasweak.runner import evaluate_test, with_evaluation_figures

    test, val = synthetic_patches(n=4, size=32, num_classes=3), synthetic_patches(n=4, size=32, num_classes=3, seed=1)
    model = build_unet(3, base_filters=4)
    model.save(tmp_path / "model.keras")
    old = {"miou": 0.25, "seed": 0}
    evaluation = {"e_measure": True, "trimap_widths": [1, 3], "calibrate": True, "test_time_flips": True, "reflect_context": 8}
    completed = with_evaluation_figures(old, tmp_path, test, evaluation, val, echo=lambda _: None)
    reference = evaluate_test(model, test, evaluation, val)
    assert completed["miou"] == 0.25  # what the seed had is kept
    assert completed["e_measure"] == pytest.approx(reference["e_measure"])
    assert completed["trimap_miou"] == reference["trimap_miou"]
    assert completed["calibrated"]["miou"] == pytest.approx(reference["calibrated"]["miou"])
    assert completed["flipped"]["miou"] == pytest.approx(reference["flipped"]["miou"])
    assert completed["in_context"]["miou"] == pytest.approx(reference["in_context"]["miou"])
    assert json.loads((tmp_path / "metrics.json").read_text()) == json.loads(json.dumps(completed))
    assert with_evaluation_figures(old, tmp_path / "no-model", test, evaluation) is old
