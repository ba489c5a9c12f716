"""`kerasweak compare`: several finished runs (and a sweep) in one table, the trimap plot and predictions side by side."""

import json
import shutil

import pytest
from PIL import Image

from helpers import assert_clean_error, kerasweak

pytestmark = pytest.mark.slow  # every test compares the tiny SEMEDA runs of the edge_runs fixture (about 70 s)


def _pm(stat):
    return f"{100 * stat['mean']:.1f} ± {100 * stat['std']:.1f}"


def test_compare_writes_one_row_per_run_and_sweep_setting_with_their_figures(edge_runs, tmp_path):
    names = ("dubai-ppce", "dubai-sobel", "dubai-semeda", "dubai-semeda-lambdas")
    table, figure = tmp_path / "table1.md", tmp_path / "patches.png"
    result = kerasweak("compare", *(edge_runs[n] for n in names), "--out", table, "--figure", figure,
                       "--data", edge_runs["data"], "--patches", 3)
    assert result.returncode == 0, result.stderr
    lines = table.read_text().splitlines()
    assert lines[2].startswith("| Method | Mean IoU | mIoU (5 classes) | F1 Building |")
    assert lines[2].endswith("| Mean accuracy | E-measure | Seeds | Seconds/seed |")
    summaries = [json.loads((edge_runs[n] / "results.json").read_text())["summary"] for n in names[:3]]
    summaries += [json.loads((edge_runs[names[3]] / s / "results.json").read_text())["summary"]
                  for s in ("lambdas_0-0-0", "lambdas_4-2-0")]
    labels = ["PPCE (kerasweak)", "Sobel (kerasweak)", "SEMEDA (kerasweak)",
              "SEMEDA (kerasweak), λ1, λ2, λ3 = 0, 0, 0", "SEMEDA (kerasweak), λ1, λ2, λ3 = 4, 2, 0"]
    for line, label, summary in zip(lines[4:9], labels, summaries):
        assert line.startswith(f"| {label} | {_pm(summary['miou'])} | {_pm(summary['miou_5'])} | {_pm(summary['f1']['Building'])} |")
        assert f"| {_pm(summary['accuracy'])} | {_pm(summary['e_measure'])} |" in line
    assert lines[6].split(" | ")[-2] == "2"  # SEMEDA's seeds
    assert "## Trimap mIoU by band width w (pixels)" in lines
    assert (tmp_path / "table1_trimap.png").stat().st_size > 0
    width, height = Image.open(figure).size  # 3 patches x (input, ground truth, one column per run)
    assert abs(width - 1.8 * (2 + len(labels)) * 110) <= 1 and abs(height - 1.9 * 3 * 110) <= 1


def test_compare_refuses_folders_without_results_and_runs_of_other_classes(edge_runs, tmp_path):
    assert_clean_error(kerasweak("compare", tmp_path, "--out", tmp_path / "t.md"), str(tmp_path), "no results.json")
    other = tmp_path / "other"
    shutil.copytree(edge_runs["dubai-ppce"], other, ignore=shutil.ignore_patterns("model", "seed_*"))
    results = json.loads((other / "results.json").read_text())
    results["summary"]["f1"] = {"Background": results["summary"]["f1"]["Land"]}
    (other / "results.json").write_text(json.dumps(results))
    result = kerasweak("compare", edge_runs["dubai-ppce"], other, "--out", tmp_path / "t.md")
    assert_clean_error(result, str(other), "scores classes Background, not those of")
    assert not (tmp_path / "t.md").exists()


def test_compare_names_the_settings_a_partial_sweep_still_lacks(edge_runs, tmp_path):
    sweep = tmp_path / "partial-sweep"
    shutil.copytree(edge_runs["dubai-semeda-lambdas"], sweep)
    results = json.loads((sweep / "results.json").read_text())
    results["settings"], results["unfinished"] = results["settings"][:1], ["lambdas_4-2-0"]
    (sweep / "results.json").write_text(json.dumps(results))
    result = kerasweak("compare", edge_runs["dubai-ppce"], sweep, "--out", tmp_path / "t.md")
    assert result.returncode == 0, result.stderr
    lines = (tmp_path / "t.md").read_text().splitlines()
    first_table = lines[4:lines.index("", 4)]
    assert [row.split(" | ")[0] for row in first_table] == ["| PPCE (kerasweak)", "| SEMEDA (kerasweak), λ1, λ2, λ3 = 0, 0, 0"]
    assert lines[-1] == f"- `{sweep}` is a partial sweep; not finished yet: lambdas_4-2-0"
