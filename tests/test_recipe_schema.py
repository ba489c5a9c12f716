"""The typed recipe schema: every bad value is one line naming the recipe, the key and the problem; committed runs still resume."""

import json
from pathlib import Path

import pytest

from kerasweak.errors import KerasweakError
from kerasweak.recipe import load_recipe, normalise_recipe, recipe_files
from kerasweak.run_folder import check_same_config, config_fingerprint
from kerasweak.sweeps import sweep_settings
from helpers import assert_clean_error, kerasweak

RESULTS = Path(__file__).resolve().parents[1] / "results"

BAD_RECIPES = [
    ('[train]\nlearnig_rate = 0.5\n', "[train] learnig_rate: unknown key (did you mean `learning_rate`?)"),
    ('[train]\nbatchsize = 4\n', "[train] batchsize: unknown key (did you mean `batch_size`?)"),
    ('[trian]\nepochs = 3\n', "trian: unknown section (did you mean `train`?)"),
    ('[train]\nbatch_size = "4"\n', "[train] batch_size must be an integer, got '4'"),
    ('[train]\nlearning_rate = -0.1\n', "[train] learning_rate must be > 0, got -0.1"),
    ('[train]\nbatch_size = 0\n', "[train] batch_size must be >= 1, got 0"),
    ('[train]\noptimizer = "rmsprop"\n', "[train] optimizer must be one of adam, adamw, sgd, got 'rmsprop'"),
    ('[data]\ntest_fraction = 1.0\n', "[data] test_fraction must be in [0, 1), got 1.0"),
    ('[data]\npatch_size = 100\n', "[data] patch_size must be a multiple of 16"),
    ('[model]\nbase_filters = 2.5\n', "[model] base_filters must be an integer, got 2.5"),
    ('[sizes]\nnum_samples = 2\n', "[sizes] is a section of method sizes, not of spss"),
]


@pytest.mark.slow
@pytest.mark.parametrize("body, message", BAD_RECIPES)
def test_each_bad_value_is_one_line_naming_the_recipe_and_the_key(tmp_path, body, message):
    recipe = tmp_path / "mine.toml"
    recipe.write_text(f'extends = "dubai-spss"\nname = "mine"\n{body}', encoding="utf-8")
    result = kerasweak("recipe", recipe, "--out", tmp_path / "out", "--epochs", 1)
    assert_clean_error(result, f"error: {recipe}: {message}")
    assert result.returncode == 2 and not (tmp_path / "out").exists()


@pytest.mark.slow
@pytest.mark.parametrize("text, message", [
    ('extends = "mine.toml"\nname = "mine"\n', "extends 'mine.toml', which extends it back (a cycle)"),
    ('name = "mine"\nmethod = "spss"\n', "dataset: missing (every recipe names its dataset)"),
    ('name = "mine"\nmethod = "spss"\ndataset = "mars"\n', "unknown dataset 'mars'; known: aerial-dubai, epfl-em, hippocampus, folder, proportions-csv"),
    ('name = "mine"\nmethod = "magic"\ndataset = "epfl-em"\n', "unknown method 'magic'; known: pixel, points, semeda, sizes, sobel, spss, spss_plus"),
    (b'name = "mine\xff"\n', "not UTF-8 text (byte 12)"),
])
def test_whole_recipe_problems_are_one_line_errors(tmp_path, monkeypatch, text, message):
    recipe = tmp_path / "mine.toml"
    recipe.write_bytes(text if isinstance(text, bytes) else text.encode())
    assert_clean_error(kerasweak("recipe", recipe, "--out", tmp_path / "out", cwd=tmp_path), message)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(KerasweakError, match="\\A[^\n]*\\Z"):
        load_recipe(str(recipe))


def test_a_recipe_is_normalised_with_one_default_per_setting():
    recipe = normalise_recipe({"name": "r", "dataset": "epfl-em", "method": "pixel"})
    assert recipe["model"] == {"base_filters": 16, "padding": "zeros"}
    assert recipe["train"]["optimizer"] == "adam" and recipe["train"]["augment"] == []
    assert "loss" not in recipe["train"] and "keypoints" not in recipe and "sweep" not in recipe
    assert normalise_recipe(recipe) == recipe  # normalising is idempotent


def _current_recipe(name):
    """The packaged recipe (or sweep setting) a run folder's config names, normalised; None if it is no longer packaged."""
    base, _, setting = name.partition("/")
    if base not in recipe_files():
        return None
    recipe = load_recipe(base)
    if setting:
        return next((sub for sub in sweep_settings(recipe)[3] if sub["name"] == name), None)
    return recipe


# Folders run with an earlier em-spss-plus (k3: 3 keypoints per class; bg30: 10 + 30 points at α = 0.5, up to
# commit 565b096, as its README says), and the first em-benchmark-blocks (colour jitter, patience 10, bf16): they
# resume with the recipe they recorded, not with today's.
EARLIER_RECIPES = {"em-spss-plus-ablation/k3", "em-spss-plus-bg30", "em-benchmark-blocks"}


@pytest.mark.parametrize("config_path", sorted(RESULTS.glob("**/config.json")), ids=lambda p: str(p.parent.relative_to(RESULTS)))
def test_every_committed_run_folder_passes_the_resume_check(tmp_path, config_path):
    stored = json.loads(config_path.read_text())
    (tmp_path / "config.json").write_text(config_path.read_text())
    options = {key: value for key, value in stored.items() if key != "recipe"}
    check_same_config(tmp_path / "config.json", {**options, "recipe": normalise_recipe(stored["recipe"], stored=True)})
    current = _current_recipe(stored["recipe"]["name"])
    folder = str(config_path.parent.relative_to(RESULTS))
    if current is not None and folder not in EARLIER_RECIPES:
        assert config_fingerprint({**options, "recipe": current}) == config_fingerprint(stored)


def test_a_folder_recipe_records_the_split_by_image_it_uses_and_refuses_another():
    recipe = normalise_recipe({"name": "r", "dataset": "folder", "method": "spss"})
    assert recipe["data"]["split"] == "image"
    with pytest.raises(KerasweakError, match=r"\[data\] split = 'block': a generic folder is split by image"):
        normalise_recipe({"name": "r", "dataset": "folder", "method": "spss", "data": {"split": "block"}})
    # runs before the rule recorded the unused default "patch"; their stored recipes still resume and evaluate
    stored = normalise_recipe({"name": "r", "dataset": "folder", "method": "spss", "data": {"split": "patch"}}, stored=True)
    assert stored == recipe
