"""`kerasweak convert label-studio`: per-image Number results (one per class) become proportions.csv."""

import json

import pytest

from folder_fakes import write_folder
from helpers import kerasweak
from kerasweak.convert import convert_keypoints
from kerasweak.data.folder import read_folder, read_labels


def number_export(path, numbers):
    """A handmade Label Studio JSON export: per image {class: number}, as Number controls named after the classes."""
    tasks = [{"id": i, "data": {"image": f"/data/upload/3/0a1b2c3d-{name}"},
              "annotations": [{"id": i, "result": [{"id": f"n{i}{k}", "type": "number", "from_name": label,
                                                    "to_name": "image", "value": {"number": value}}
                                                   for k, (label, value) in enumerate(by_class.items())]}]}
             for i, (name, by_class) in enumerate(numbers.items(), start=1)]
    path.write_text(json.dumps(tasks, indent=1))
    return path


def test_fractions_and_percents_become_proportions_csv(tmp_path):
    folder = write_folder(tmp_path / "data", images=3, masks=None)
    export = number_export(tmp_path / "ls.json", {"img_000.png": {"sky": 0.25, "road": 0.5, "car": 0.25},
                                                  "img_001.png": {"sky": 10, "road": 60, "car": 30},
                                                  "img_002.png": {"car": 0.995, "sky": 0.005}})
    written = convert_keypoints("label-studio", export, folder, echo=lambda line: None)
    assert written == [folder / "proportions.csv"]
    assert (folder / "proportions.csv").read_text().splitlines() == [
        "image,sky,road,car", "img_000.png,0.250000,0.500000,0.250000", "img_001.png,0.100000,0.600000,0.300000",
        "img_002.png,0.005000,0.000000,0.995000"]
    labels = read_labels(folder)
    assert labels.proportions["img_001.png"].tolist() == pytest.approx([0.1, 0.6, 0.3])
    data = {"patch_size": 16, "test_fraction": 0.2, "val_fraction": 0.1, "split_seed": 0}
    assert len(read_folder(folder, data, labels=labels)) == 3


@pytest.mark.slow
def test_the_cli_writes_proportions_and_names_the_file(tmp_path):
    folder = write_folder(tmp_path / "data", images=2, masks=None)
    export = number_export(tmp_path / "ls.json", {"img_000.png": {"sky": 50, "road": 50}, "img_001.png": {"car": 100}})
    result = kerasweak("convert", "label-studio", export, folder)
    assert result.returncode == 0, result.stderr
    assert f"wrote {folder / 'proportions.csv'}: class proportions of 2 images" in result.stdout
    assert (folder / "proportions.csv").read_text().splitlines()[2] == "img_001.png,0.000000,0.000000,1.000000"
