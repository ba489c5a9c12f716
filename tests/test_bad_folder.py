"""The generic-folder rows of the bad-input catalogue (docs/bad-input.md, "Generic folders"), through the real command.

Errors: `kerasweak train` (or `convert`) exits 2 with one line `error: PATH: problem`
and writes nothing. Warnings: `kerasweak check-data` exits 0 with one line
`warning: PATH: problem` on stderr.
"""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from folder_fakes import cvat_export, label_studio_export, write_folder
from helpers import kerasweak

CATALOGUE = Path(__file__).resolve().parents[1] / "docs" / "bad-input.md"
TINY = ["--epochs", "1", "--patch-size", "16", "--base-filters", "2"]
NO_COLOURS = "a colour mask, but dataset.toml gives no colours (add colours = [[R, G, B], …], one per class, or save index masks)"


def _train(method="pixel", **folder):
    """(make(tmp) -> (folder, args)): a tiny folder and `kerasweak train METHOD` on it."""
    def make(tmp, change):
        root = write_folder(tmp / "data", **folder)
        path = change(root)
        return ["train", method, root, "--out", tmp / "out", *TINY], path
    return make


def _write(relative, text):
    def change(root):
        (root / relative).write_text(text)
        return root / relative
    return change


def _mask(value=None, size=None, colour=None):
    def change(root):
        path = root / "masks" / "img_002.png"
        if size:
            Image.fromarray(np.zeros(size, np.uint8)).save(path)
        elif colour:
            rgb = np.array(Image.open(path).convert("RGB"))
            rgb[5, 5] = colour
            Image.fromarray(rgb).save(path)
        else:
            labels = np.array(Image.open(path))
            labels[:2, :3] = value
            Image.fromarray(labels).save(path)
        return path
    return change


def _unlink(relative, parent=None):
    def change(root):
        (root / relative).unlink()
        return root / (parent or relative)
    return change


def _float_image(root):
    path = root / "images" / "img_001.png"
    path.unlink()
    Image.fromarray(np.zeros((36, 40), np.float32)).save(root / "images" / "img_001.tif")
    return root / "images" / "img_001.tif"


def _empty_images(root):
    shutil.rmtree(root / "images")
    (root / "images").mkdir()
    return root / "images"


def _convert_keypoints(kind):
    def make(tmp, change):
        root = write_folder(tmp / "data", masks="index")
        points = {"other.png": [(1, 1, "sky")]}
        Image.fromarray(np.zeros((36, 40), np.uint8)).save(root / "images" / "other.png")
        Image.fromarray(np.zeros((36, 40), np.uint8)).save(root / "masks" / "other.png")
        export = (label_studio_export if kind == "label-studio" else cvat_export)(root, points)
        (root / "images" / "other.png").unlink()
        (root / "masks" / "other.png").unlink()
        return ["convert", kind, export, root], export
    return make


def _convert_numbers(numbers):
    def make(tmp, change):
        root = write_folder(tmp / "data", masks="index")
        export = tmp / "label-studio.json"
        export.write_text(json.dumps([{"id": 1, "data": {"image": "/data/upload/1/1a2b3c4d-img_000.png"}, "annotations": [
            {"id": 1, "result": [{"type": "number", "from_name": label, "to_name": "image", "value": {"number": value}}
                                 for label, value in numbers.items()]}]}]))
        return ["convert", "label-studio", export, root], export
    return make


def _convert_into_a_full_folder(tmp, change):
    (tmp / "full").mkdir()
    (tmp / "full" / "x.txt").write_text("")
    return ["convert", "camvid", tmp / "src", tmp / "full"], tmp / "full"


SPLIT = "image,split\n" + "".join(f"img_{i:03d}.png,train\n" for i in range(9))
ERRORS = {  # row: (problem, make(tmp, change) -> (args, ...), change(root) -> PATH)
    "folder-no-dataset-toml": ("no dataset.toml here: a generic dataset folder needs one naming its classes",
                               _train(), _unlink("dataset.toml", ".")),
    "folder-one-class": ("classes: name at least 2 classes, found 1", _train(), _write("dataset.toml", 'classes = ["sky"]\n')),
    "folder-colour-count": ("colours: 2 colours for 3 classes", _train(),
                            _write("dataset.toml", 'classes = ["sky", "road", "car"]\ncolours = [[0, 0, 0], [1, 1, 1]]\n')),
    "folder-unknown-toml-key": ("unknown key 'class'; known: classes, colours, ignore, channels", _train(),
                                _write("dataset.toml", 'class = ["sky", "road"]\n')),
    "folder-no-images": ("empty folder: no png, jpg/jpeg or tif/tiff images", _train(), _empty_images),
    "folder-float-image": ("unsupported image mode 'F' (kerasweak reads 8-bit grey, RGB, RGBA or palette images and "
                           "16-bit grey ones)", _train(), _float_image),
    "folder-mask-value": ("mask value 7 (6 pixels) is not a class index 0-2 nor the ignore value", _train(), _mask(7)),
    "folder-mask-size": ("mask size 20x16 differs from image size 40x36", _train(), _mask(size=(16, 20))),
    "folder-colour-mask-without-colours": (NO_COLOURS, _train(), _mask(colour=(1, 2, 3))),
    "folder-unknown-mask-colour": ("unknown mask colour #FF00FF (1 pixels) is not in the palette", _train(masks="colour"),
                                   _mask(colour=(255, 0, 255))),
    "folder-mask-missing": ("no mask for image img_003.png (1 of 10 images have none; give every image a mask, or none)",
                            _train(), _unlink("masks/img_003.png", "masks")),
    "folder-proportions-header-is-data": ("line 1 looks like data, not a header; the first line must be "
                                          "'image,sky,road,car' (any column order)", _train("spss", masks=None),
                                          _write("proportions.csv", "img_000.png,0.2,0.3,0.5\n")),
    "folder-proportions-sum": ("line 3: proportions sum to 0.9000, not 1", _train("spss", masks=None),
                               _write("proportions.csv", "image,car,sky,road\nimg_000.png,0.2,0.3,0.5\nimg_001.png,0.2,0.3,0.4\n")),
    "folder-proportions-unknown-image": ("line 2: unknown image 'nope.png' (not in images/)", _train("spss", masks=None),
                                         _write("proportions.csv", "image,sky,road,car\nnope.png,0.2,0.3,0.5\n")),
    "folder-keypoint-outside-image": ("line 2: point (99, 1) is outside the 40x36 image img_000.png", _train("spss-plus"),
                                      _write("keypoints.csv", "image,class,x,y\nimg_000.png,sky,99,1\n")),
    "folder-keypoint-unknown-class": ("line 2: unknown class 'tree'; known: sky, road, car", _train("spss-plus"),
                                      _write("keypoints.csv", "x,y,image,class\n1,1,img_000,tree\n")),
    "folder-sizes-with-three-classes": ("object sizes need two classes (background and object); dataset.toml names 3",
                                        _train(), _write("sizes.csv", "image,size\nimg_000.png,3\n")),
    "folder-sizes-negative": ("line 2: size -1 must be >= 0", _train("sizes", classes=("bg", "fg")),
                              _write("sizes.csv", "image,size\nimg_000.png,-1\n")),
    "folder-split-value": ("line 2: split 'holdout' is not train, val or test", _train(),
                           _write("split.csv", "image,split\nimg_000.png,holdout\n")),
    "folder-split-missing-image": ("no split for image img_009.png (1 of 10 images have none)", _train(),
                                   _write("split.csv", SPLIT)),
    "folder-too-few-images": ("2 images are too few to split into train, val and test images; add images or a split.csv "
                              "(the split is by image, so train, val and test never share one)", _train(images=2),
                              lambda root: root / "images"),
    "train-without-the-labels-it-needs": ("pixel needs masks/ (one index or colour PNG per image, named as the image)",
                                          _train(masks=None, proportions=True), lambda root: root),
    "convert-label-studio-unknown-image": ("task 1: image '/data/upload/1/1a2b3c4d-other.png' is not in images/",
                                           _convert_keypoints("label-studio"), None),
    "convert-cvat-unknown-image": ("image 'other.png' is not in images/", _convert_keypoints("cvat"), None),
    "convert-label-studio-numbers-sum": ("image img_000.png: its numbers sum to 0.8, not 1 (fractions) or 100 (percents) "
                                         "within 1%", _convert_numbers({"sky": 0.3, "road": 0.5}), None),
    "convert-label-studio-unknown-number": ("task 1: number 'tree' is not a class of dataset.toml (sky, road, car)",
                                            _convert_numbers({"tree": 1.0}), None),
    "convert-into-a-full-folder": ("exists and is not empty; convert writes a new folder", _convert_into_a_full_folder, None),
}


def _copy(root):
    shutil.copy(root / "images" / "img_000.png", root / "images" / "img_copy.png")
    shutil.copy(root / "masks" / "img_000.png", root / "masks" / "img_copy.png")
    return root / "images" / "img_copy.png"


WARNINGS = {  # row: (problem, change(root) -> PATH) on a tiny folder with index masks and proportions.csv
    "folder-unread-file": ("not read (not a png, jpg/jpeg or tif/tiff image)", _write("images/notes.bmp", "")),
    "folder-unread-top-level-file": ("not read (a generic folder reads dataset.toml, images/, masks/ and proportions.csv, "
                                     "keypoints.csv, sizes.csv, split.csv)", _write("labels.json", "{}")),
    "folder-mask-of-no-image": ("not read (no image in images/ has the stem 'other')", _write("masks/other.png", "")),
    "folder-same-image-twice": ("the same image content as img_000.png (a copy trains and is scored twice)", _copy),
    "folder-conflicting-rows": ("line 12: image img_000.png is listed again (first at line 2), with other values; "
                                "the first is used", lambda root: _append(root / "proportions.csv", "img_000,1,0,0\n")),
    "folder-csv-without-header": ("line 1 looks like data, not a header; read as columns image,split",
                                  _write("split.csv", "".join(f"img_{i:03d}.png,{'test' if i < 2 else 'val' if i < 3 else 'train'}\n"
                                                              for i in range(10)))),
    "folder-keypoint-with-two-classes": ("line 3: point (5, 6) of img_001.png is car, but sky at line 2",
                                         _write("keypoints.csv", "image,class,x,y\nimg_001.png,sky,5,6\nimg_001.png,car,5.5,6\n")),
    "folder-few-proportion-vectors": ("4 training images give SPSS 4 proportion vectors (one each); on Aerial Dubai it needed 5 "
                                      "to beat a map of the most frequent class (more images, or smaller patches, give more; "
                                      "docs/protocol.md)", lambda root: _split_with_train_images(root, 4)),
}


def _split_with_train_images(root, count):
    """A split.csv with `count` training images, the rest split between val and test; the folder is the PATH."""
    parts = ["train"] * count + ["val", "test"] * 5
    (root / "split.csv").write_text("image,split\n" + "".join(f"img_{i:03d}.png,{parts[i]}\n" for i in range(10)))
    return root


def _append(path, text):
    path.write_text(path.read_text() + text)
    return path


def _files_in(folder):
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else []


@pytest.mark.slow
@pytest.mark.parametrize("row", ERRORS)
def test_bad_folder_gets_one_line_and_leaves_nothing(tmp_path, row):
    problem, make, change = ERRORS[row]
    (tmp_path / "src").mkdir()
    args, path = make(tmp_path, change)
    before = None
    if row.startswith("convert-") and row != "convert-into-a-full-folder":
        before = (tmp_path / "data" / "keypoints.csv").exists()
    result = kerasweak(*args, cwd=tmp_path)
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    assert result.stderr.splitlines() == [f"error: {path}: {problem}"]
    assert _files_in(tmp_path / "out") == []
    if row.startswith("convert-") and row != "convert-into-a-full-folder":
        assert (tmp_path / "data" / "keypoints.csv").exists() == before
        assert not (tmp_path / "data" / "proportions.csv").exists()


@pytest.mark.slow
@pytest.mark.parametrize("row", WARNINGS)
def test_check_data_warns_in_one_line_and_exits_0(tmp_path, row):
    problem, change = WARNINGS[row]
    root = write_folder(tmp_path / "data", masks="index", proportions=True)
    path = change(root)
    result = kerasweak("check-data", root)
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [f"warning: {path}: {problem}"]
    assert result.stdout.rstrip().endswith("0 errors, 1 warnings")


@pytest.mark.slow
def test_check_data_lists_every_error_and_exits_2(tmp_path):
    root = write_folder(tmp_path / "data", masks="index", proportions=True)
    _mask(7)(root)
    (root / "split.csv").write_text("image,split\nimg_000.png,holdout\n")
    result = kerasweak("check-data", root)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"error: {root / 'masks' / 'img_002.png'}: mask value 7 (6 pixels) is not a class index 0-2 nor the ignore value",
        f"error: {root / 'split.csv'}: line 2: split 'holdout' is not train, val or test"]


def test_the_catalogue_lists_every_folder_row():
    catalogue = CATALOGUE.read_text()
    for row, (problem, *_) in {**ERRORS, **WARNINGS}.items():
        assert f"`{row}`" in catalogue, row
        assert problem in catalogue, (row, problem)
