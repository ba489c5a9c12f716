"""The `kerasweak` command end to end, in subprocesses (real exit codes, real stderr)."""

import json

import numpy as np
import pytest
from PIL import Image

from kerasweak.data import read_dubai
from kerasweak.inference import evaluate_export
from kerasweak.recipe import list_recipes
from helpers import assert_clean_error, assert_scores_match_confusion, assert_summary_of_seeds, held_out_masks, kerasweak


def test_recipes_lists_the_packaged_recipes(tmp_path):
    result = kerasweak("recipes", cwd=tmp_path)
    assert result.returncode == 0
    assert "dubai-spss" in result.stdout and "dubai-benchmark" in result.stdout
    lines = result.stdout.splitlines()
    description_columns = {len(line) - len(line.split(maxsplit=1)[1]) for line in lines}
    assert len(lines) == len(list_recipes()) and len(description_columns) == 1  # one aligned column, however long a name


@pytest.mark.slow
def test_tiny_recipe_end_to_end_resume_predict_and_evaluate(tmp_path, fake_dubai, tiny_recipe):
    out = tmp_path / "out"
    result = kerasweak("recipe", tiny_recipe("spss"), "--data", fake_dubai, "--out", out, "--seeds", 2, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    results = json.loads((out / "results.json").read_text())
    assert results["seeds"] == 2 and len(results["summary"]["miou"]["values"]) == 2
    test_masks = held_out_masks(read_dubai(fake_dubai, patch_size=32))  # scored on the test split's labelled pixels
    for seed in results["per_seed"]:
        assert_scores_match_confusion(seed, test_masks)
    assert_summary_of_seeds(results, ("miou", "miou_5", "accuracy"))
    assert "| SPSS (kerasweak) (2 seeds) |" in (out / "results.md").read_text()
    assert (out / "figure.png").stat().st_size > 0 and (out / "loss.png").stat().st_size > 0
    assert list((out / "seed_0" / "tensorboard" / "masks").glob("events.out.tfevents.*"))  # predicted masks per epoch
    assert (out / "model" / "saved_model.pb").exists() and (out / "model" / "kerasweak.json").exists()
    assert (out / "seed_0" / "log.csv").exists()

    rerun = kerasweak("recipe", tiny_recipe("spss"), "--data", fake_dubai, "--out", out, "--seeds", 2, cwd=tmp_path)
    assert rerun.returncode == 0 and rerun.stdout.count("finished earlier, skipping") == 2

    image = fake_dubai / "Tile 1" / "images" / "image_part_001.jpg"
    prediction = tmp_path / "pred.png"
    result = kerasweak("predict", out / "model", image, "--out", prediction, "--tile", 32, "--overlap", 8)
    assert result.returncode == 0, result.stderr
    assert Image.open(prediction).size == Image.open(image).size
    assert (tmp_path / "pred_overlay.png").exists()

    result = kerasweak("evaluate", out / "model", "--data", fake_dubai)
    assert result.returncode == 0, result.stderr
    assert f"mIoU {100 * results['per_seed'][results['exported_seed']]['miou']:.1f}" in result.stdout

    # a seed kept without its model (as in results/) still counts, and the other seed is exported
    (out / f"seed_{results['exported_seed']}" / "model.keras").unlink()
    result = kerasweak("recipe", tiny_recipe("spss"), "--data", fake_dubai, "--out", out, "--seeds", 2, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rerun_results = json.loads((out / "results.json").read_text())
    assert rerun_results["seeds"] == 2 and rerun_results["exported_seed"] == 1 - results["exported_seed"]


@pytest.mark.slow
def test_evaluate_reports_the_e_measure_trimap_miou_and_calibration_its_recipe_asks_for(tmp_path, fake_dubai, tiny_recipe):
    recipe = tiny_recipe(extends="dubai-benchmark", name="tiny-benchmark", train={"epochs": 1},
                         evaluation={"trimap_widths": [1, 3], "calibrate": True})
    out = tmp_path / "out"
    assert kerasweak("recipe", recipe, "--data", fake_dubai, "--out", out, cwd=tmp_path).returncode == 0
    seed = json.loads((out / "results.json").read_text())["per_seed"][0]

    result = kerasweak("evaluate", out / "model", "--data", fake_dubai)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"mIoU {100 * seed['miou']:.1f}  accuracy {100 * seed['accuracy']:.1f}  E-measure {100 * seed['e_measure']:.1f}"
    building = next(line for line in lines if line.strip().startswith("Building"))
    assert building.endswith(f"E {100 * seed['e_measure_per_class']['Building']:5.1f}")
    assert f"precision {100 * seed['precision']['Building']:5.1f}  recall {100 * seed['recall']['Building']:5.1f}" in building
    for region in ("boundary", "non_boundary"):
        trimap = seed["trimap_miou"][region]
        expected = "  ".join(f"w={w} {'–' if np.isnan(trimap[w]) else f'{100 * trimap[w]:.1f}'}" for w in ("1", "3"))
        assert f"trimap mIoU {region.replace('_', '-'):12s} {expected}" in lines
    calibrated = seed["calibrated"]  # class bias fitted on the validation proportions, carried by the export
    assert json.loads((out / "model" / "kerasweak.json").read_text())["class_bias"] == calibrated["class_bias"]
    assert f"calibrated to the validation proportions: mIoU {100 * calibrated['miou']:.1f}" in result.stdout
    assert "calibrated to the validation proportions |" in (out / "results.md").read_text()
    assert "reflected context" not in result.stdout

    in_context = kerasweak("evaluate", out / "model", "--data", fake_dubai, "--reflect-context", 8)
    assert in_context.returncode == 0, in_context.stderr
    expected = evaluate_export(out / "model", data=fake_dubai, reflect_context=8)["in_context"]
    assert f"patches predicted with reflected context: mIoU {100 * expected['miou']:.1f}" in in_context.stdout
    assert_clean_error(kerasweak("evaluate", out / "model", "--data", fake_dubai, "--reflect-context", 12),
                       "error: --reflect-context: must be 0 or a positive multiple of 8, got 12")


@pytest.mark.slow
def test_tiny_em_spss_plus_recipe_reports_the_mitochondria_class(tmp_path, fake_epfl, tiny_recipe):
    recipe = tiny_recipe(extends="em-spss-plus", name="tiny-em", keypoints={"fraction_of_images": 1.0})
    out = tmp_path / "out"
    result = kerasweak("recipe", recipe, "--data", fake_epfl.parent, "--out", out, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    table = (out / "results.md").read_text()
    head = table.splitlines()[2]
    assert head == "| Model | Mean IoU | F1 Background | F1 Mitochondria | Mean accuracy | Seconds/seed |"
    assert "| SPSS+ (paper) | 65.3 ± 0.8 | 98.1 ± 0.8 | 79.3 ± 0.3 | 97.7 ± 0.8 |  |" in table
    results = json.loads((out / "results.json").read_text())
    assert set(results["summary"]["f1"]) == {"Background", "Mitochondria"} and "Mitochondria" in results["summary"]["iou"]
    meta = json.loads((out / "model" / "kerasweak.json").read_text())
    assert meta["method"] == "spss_plus" and meta["num_outputs"] == 1 and meta["channels"] == 1
    assert (out / "figure.png").stat().st_size > 0


@pytest.mark.slow
def test_a_different_recipe_in_the_same_out_is_refused(tmp_path, fake_dubai, tiny_recipe):
    out = tmp_path / "out"
    (out).mkdir()
    (out / "config.json").write_text(json.dumps({"recipe": {"name": "other"}}))
    assert_clean_error(kerasweak("recipe", tiny_recipe("pixel"), "--data", fake_dubai, "--out", out), "different recipe")


@pytest.mark.slow
@pytest.mark.parametrize("case", ["missing", "empty", "corrupt", "colour", "small", "unwritable", "unknown-recipe", "not-a-model"])
def test_bad_input_gets_one_clear_line_and_leaves_nothing(tmp_path, fake_dubai, tiny_recipe, case):
    data, out, recipe, args = fake_dubai, tmp_path / "out", tiny_recipe("spss"), []
    expected = []
    if case == "missing":
        data, expected = tmp_path / "nowhere", ["nowhere", "does not exist"]
    elif case == "empty":
        data = tmp_path / "empty"
        data.mkdir()
        expected = ["empty", "humansintheloop"]
    elif case == "corrupt":
        bad = fake_dubai / "Tile 2" / "images" / "image_part_001.jpg"
        bad.write_bytes(bad.read_bytes()[:300])
        expected = ["image_part_001.jpg", "cannot decode image"]
    elif case == "colour":
        mask = fake_dubai / "Tile 1" / "masks" / "image_part_001.png"
        rgb = np.array(Image.open(mask).convert("RGB"))
        rgb[20, 20] = (255, 0, 255)
        Image.fromarray(rgb).save(mask)
        expected = ["image_part_001.png", "unknown mask colour #FF00FF"]
    elif case == "small":
        recipe = "dubai-spss"
        expected = ["smaller than a 224x224 patch"]
    elif case == "unwritable":
        blocker = tmp_path / "file"
        blocker.write_text("")
        out, expected = blocker / "out", ["not writable"]
    elif case == "unknown-recipe":
        recipe, expected = "no-such-recipe", ["unknown recipe", "dubai-spss"]
    if case == "not-a-model":
        result = kerasweak("predict", tmp_path, fake_dubai / "Tile 1" / "images" / "image_part_001.jpg", "--out", out / "p.png")
        expected = ["not a kerasweak model folder"]
    else:
        result = kerasweak("recipe", recipe, "--data", data, "--out", out, *args, cwd=tmp_path)
    assert_clean_error(result, *expected)
    assert not (out / "results.json").exists() and not (out / "model").exists()


@pytest.mark.slow
def test_train_from_a_proportions_csv_without_masks_then_predict(tmp_path, tiny_recipe):
    rows = []
    for i in range(6):
        image = np.zeros((40, 40, 3), np.uint8)
        image[: 6 * i] = 200
        Image.fromarray(image).save(tmp_path / f"img{i}.png")
        bright = 6 * i / 40
        rows.append(f"img{i}.png,{bright:.3f},{1 - bright:.3f}")
    (tmp_path / "props.csv").write_text("image,bright,dark\n" + "\n".join(rows) + "\n")
    recipe = tiny_recipe(name="tiny-csv", train={"batch_size": 2})
    out = tmp_path / "out"
    result = kerasweak("train-proportions", tmp_path / "props.csv", "--out", out, "--recipe", recipe, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    results = json.loads((out / "results.json").read_text())
    assert results["images"] == 6 and results["epochs"] == 2 and np.isfinite(results["best_val_loss"])
    assert (out / "loss.png").is_file()
    meta = json.loads((out / "model" / "kerasweak.json").read_text())
    assert meta["class_names"] == ["bright", "dark"] and meta["method"] == "spss"
    result = kerasweak("predict", out / "model", tmp_path / "img0.png", "--out", tmp_path / "p.png", "--tile", 32, "--overlap", 8)
    assert result.returncode == 0, result.stderr
    assert Image.open(tmp_path / "p.png").size == (40, 40)
