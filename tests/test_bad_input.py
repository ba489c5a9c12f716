"""The bad-input catalogue (docs/bad-input.md), row by row, through the real `kerasweak` command.

Every row must exit non-zero with exactly one stderr line, `error: PATH: problem`,
no traceback, and no file written in --out.
"""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers import kerasweak

CATALOGUE = Path(__file__).resolve().parents[1] / "docs" / "bad-input.md"
DUBAI_HOW_TO = ("no aerial-dubai data here; download the Kaggle dataset humansintheloop/semantic-segmentation-of-aerial-imagery "
                "and pass --data to the folder holding 'Tile 1' … 'Tile 8' (each with images/ and masks/)")
HIPPOCAMPUS_HOW_TO = ("no hippocampus data here; download Task04_Hippocampus of the Medical Segmentation Decathlon "
                      "(medicaldecathlon.com) and pass --data to the folder holding imagesTr/ and labelsTr/")
EIGHT_BITS = "kerasweak reads 8 bits per channel: grayscale, RGB, RGBA or palette"


class Case:
    """Inputs for one catalogue row: tmp_path, the output folder and the fixtures a row builds on."""

    def __init__(self, tmp_path, request):
        self.tmp = tmp_path
        self.out = tmp_path / "out"
        self.request = request

    def fixture(self, name):
        return self.request.getfixturevalue(name)

    def dubai_recipe(self, data=None, recipe=None):
        """A run of the tiny SPSS recipe on fake Aerial Dubai (or on `data`): fails while reading, before training."""
        recipe = recipe or self.fixture("tiny_recipe")("spss")
        return ["recipe", recipe, "--data", data or self.fixture("fake_dubai"), "--out", self.out]

    def proportions(self, *rows, header="image,a,b,c"):
        """train-proportions on a CSV of `rows` naming 40×40 PNGs beside it."""
        for name in ("x.png", "y.png"):
            Image.fromarray(np.full((40, 40, 3), 90, np.uint8)).save(self.tmp / name)
        csv_path = self.tmp / "props.csv"
        csv_path.write_text(header + "\n" + "\n".join(rows) + "\n")
        return ["train-proportions", csv_path, "--out", self.out, "--recipe", self.fixture("tiny_recipe")("spss")]

    def sizes(self, text):
        sizes_csv = self.tmp / "sizes.csv"
        sizes_csv.write_text(text)
        return ["recipe", "hippocampus-size", "--data", self.fixture("fake_hippocampus"), "--out", self.out, "--sizes", sizes_csv]

    def keypoints(self, name, text, recipe=None):
        """A tiny SPSS+ run on the fake EPFL stack (four 64×64 slices, training.tif[0] …) with keypoint file `name`."""
        if recipe is None:
            recipe = self.fixture("tiny_recipe")(extends="em-spss-plus", train={"epochs": 1})
        path = self.tmp / name
        path.write_text(text)
        return ["recipe", recipe, "--data", self.fixture("fake_epfl").parent, "--out", self.out, "--keypoints", path], path

    def export(self, **metadata):
        """A copy of the tiny exported U-Net, with kerasweak.json changed by `metadata`."""
        model = self.tmp / "model"
        shutil.copytree(self.fixture("tiny_export"), model)
        meta = json.loads((model / "kerasweak.json").read_text())
        (model / "kerasweak.json").write_text(json.dumps({**meta, **metadata}))
        return model

    def predict(self, model, out=None):
        image = self.fixture("fake_dubai") / "Tile 1" / "images" / "image_part_001.jpg"
        return ["predict", model, image, "--out", out or self.out / "mask.png", "--tile", 32, "--overlap", 8]


def _keypoints(name, text):
    return lambda case: case.keypoints(name, text)


def _keypoints_for_another_method(case):
    return case.keypoints("points.csv", "image,class,x,y\ntraining.tif[0],Background,1,1\n", recipe="em-spss")[0], "em-spss"


def _corrupt_image(case):
    image = case.fixture("fake_dubai") / "Tile 2" / "images" / "image_part_001.jpg"
    image.write_text("<html>404 Not Found</html>")
    return case.dubai_recipe(), image


def _truncated_image(case):
    image = case.fixture("fake_dubai") / "Tile 2" / "images" / "image_part_002.jpg"
    image.write_bytes(image.read_bytes()[:1000])
    return case.dubai_recipe(), image


def _sixteen_bit_image(case):
    args = case.proportions("x.png,0.2,0.3,0.5", "y.png,1,0,0")
    Image.fromarray(np.full((40, 40), 1000, np.uint16)).save(case.tmp / "y.png")
    return args, case.tmp / "y.png"


def _unknown_mask_colour(case):
    mask = case.fixture("fake_dubai") / "Tile 1" / "masks" / "image_part_002.png"
    rgb = np.array(Image.open(mask).convert("RGB"))
    rgb[20, 20] = (255, 0, 255)
    Image.fromarray(rgb).save(mask)
    return case.dubai_recipe(), mask


def _proportions_row(row):
    return lambda case: (case.proportions("x.png,0.2,0.3,0.5", row), case.tmp / "props.csv")


def _one_class_header(case):
    return case.proportions("x.png,1", "y.png,1", header="image,a"), case.tmp / "props.csv"


def _missing_proportions_file(case):
    args = case.proportions("x.png,1,0,0")
    (case.tmp / "props.csv").unlink()
    return args, case.tmp / "props.csv"


def _third_label_value(case):
    import tifffile

    root = case.fixture("fake_epfl")
    labels = tifffile.imread(root / "training_groundtruth.tif")
    labels[0, :2, :3] = 128
    tifffile.imwrite(root / "training_groundtruth.tif", labels)
    return ["recipe", "em-spss", "--data", root.parent, "--out", case.out], root / "training_groundtruth.tif"


def _sizes_file(text):
    return lambda case: (case.sizes(text), case.tmp / "sizes.csv")


def _image_smaller_than_patch(case):
    image = case.fixture("fake_dubai") / "Tile 1" / "images" / "image_part_001.jpg"
    return case.dubai_recipe(recipe="dubai-spss"), image


def _empty_data_folder(case):
    empty = case.tmp / "empty"
    empty.mkdir()
    return case.dubai_recipe(data=empty), empty


def _missing_data_folder(case):
    return case.dubai_recipe(data=case.tmp / "nowhere"), case.tmp / "nowhere"


def _out_under_a_file(case):
    blocker = case.tmp / "file"
    blocker.write_text("")
    case.out = blocker / "out"
    return case.dubai_recipe(), case.out


def _predict_out_under_a_file(case):
    blocker = case.tmp / "file"
    blocker.write_text("")
    return case.predict(case.fixture("tiny_export"), out=blocker / "masks" / "mask.png"), blocker / "masks"


def _predict_out_is_a_folder(case):
    case.out.mkdir()
    return case.predict(case.fixture("tiny_export"), out=case.out), case.out


def _predict_with(*options, image=None, out=None):
    """`kerasweak predict` of the tiny export with `options`, on `image` (default: a fake Aerial Dubai image) into `out`."""
    def make(case):
        picture = image(case) if image else case.fixture("fake_dubai") / "Tile 1" / "images" / "image_part_001.jpg"
        target = case.out / (out or "mask.png")
        return ["predict", case.fixture("tiny_export"), picture, "--out", target, *options], target
    return make


def _huge_png(case):
    """A PNG whose header says 40000×30000 pixels (1.2 gigapixels); nothing past the header is ever decoded."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    path = case.tmp / "huge.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 40000, 30000, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))
    return path


def _empty_folder(case):
    folder = case.tmp / "empty"
    folder.mkdir()
    return folder


def _predict_tiling(*options, wrong):
    return lambda case: (_predict_with(*options)(case)[0], wrong)


def _predict_input(make_image):
    def make(case):
        image = make_image(case)
        return _predict_with(image=lambda _: image)(case)[0], image
    return make


def _not_a_model(case):
    folder = case.tmp / "not-a-model"
    folder.mkdir()
    return case.predict(folder), folder


def _broken_model_metadata(case):
    model = case.export()
    (model / "kerasweak.json").write_text("{not json")
    return case.predict(model), model


def _evaluate_with(*options, wrong):
    return lambda case: (["evaluate", case.export(), "--data", case.fixture("fake_dubai"), *options], wrong)


def _mask_free_model_to_evaluate(case):
    model = case.export(dataset="proportions-csv")
    return ["evaluate", model, "--data", case.fixture("fake_dubai")], model


def _size_model_on_other_data(case):
    from kerasweak.recipe import load_recipe

    model = case.export(method="sizes", recipe=load_recipe("hippocampus-size"), dataset="hippocampus")
    data = case.fixture("fake_dubai")
    return ["evaluate", model, "--data", data], data


def _too_few_patches(max_samples):
    def make(case):
        args = case.dubai_recipe() + ["--max-samples", max_samples]
        return args, "tiny-spss"
    return make


def _too_few_proportion_images(case):
    return case.proportions("x.png,0.2,0.3,0.5", "y.png,1,0,0"), case.tmp / "props.csv"


def _headerless_proportions(case):
    return case.proportions("y.png,1,0,0", header="x.png,0.2,0.3,0.5"), case.tmp / "props.csv"


def _duplicate_image_names(case):
    images = case.fixture("fake_dubai") / "Tile 1" / "images"
    Image.open(images / "image_part_001.jpg").save(images / "image_part_001.png")
    return case.dubai_recipe(), images


def _evaluate_on_other_data(case):
    from kerasweak.recipe import load_recipe

    recipe = load_recipe(case.fixture("tiny_recipe")("spss"))
    model = case.export(recipe=recipe, max_samples=None, test_patches=[0], test_sources=["Tile 9/images/image_part_001.jpg"])
    return ["evaluate", model, "--data", case.fixture("fake_dubai")], model


CLI_ROWS = {  # row: (the problem after "error: PATH: ", how to make the input -> (CLI arguments, PATH))
    "corrupt-image": ("cannot decode image: not an image file, or an unknown format", _corrupt_image),
    "truncated-image": ("cannot decode image: the file is truncated", _truncated_image),
    "16-bit-image": (f"unsupported image mode 'I;16B' (16 bits per channel; {EIGHT_BITS})", _sixteen_bit_image),
    "unknown-mask-colour": ("unknown mask colour #FF00FF (1 pixels) is not in the palette", _unknown_mask_colour),
    "proportions-not-summing-to-1": ("line 3: proportions sum to 0.9000, not 1", _proportions_row("y.png,0.2,0.3,0.4")),
    "proportions-nan": ("line 3: proportions must be finite (found NaN or inf)", _proportions_row("y.png,nan,0.5,0.5")),
    "proportions-negative": ("line 3: proportions must not be negative", _proportions_row("y.png,-0.5,1.0,0.5")),
    "proportions-wrong-class-count": ("line 3: 2 proportions, expected 3", _proportions_row("y.png,0.5,0.5")),
    "proportions-one-class": ("header must name at least 2 classes after 'image', found 1", _one_class_header),
    "proportions-missing-file": ("proportions file not found", _missing_proportions_file),
    "mask-with-an-extra-class": ("label value 128 (6 pixels) is not 0 or 255", _third_label_value),
    "sizes-negative": ("line 2: size -3 must be a finite number >= 0",
                       _sizes_file("image,size\nimagesTr/hippocampus_000.nii.gz[z=0],-3\n")),
    "sizes-wrong-header": ("expected a header 'image,size' and one row per image",
                           _sizes_file("image,diameter\nimagesTr/hippocampus_000.nii.gz[z=0],3\n")),
    "keypoint-outside-image-csv": ("line 3: point (64, 2) is outside the 64x64 image 'training.tif[0]'",
                                   _keypoints("points.csv", "image,class,x,y\ntraining.tif[0],Background,1,1\n"
                                                            "training.tif[0],Mitochondria,64,2\n")),
    "keypoint-unknown-class-csv": ("line 2: unknown class 'water'; known: Background, Mitochondria",
                                   _keypoints("points.csv", "image,class,x,y\ntraining.tif[1],water,1,1\n")),
    "keypoint-outside-image-json": ("line 1: point (0, 64) is outside the 64x64 image 'training.tif[0]'",
                                    _keypoints("points.json", '[{"image": "training.tif[0]", "class": "Background", '
                                                              '"x": 0, "y": 64}]')),
    "keypoint-unknown-image-json": ("line 2: unknown image 'training.tif[9]'",
                                    _keypoints("points.json", '[\n {"image": "training.tif[9]", "class": "Background", '
                                                              '"x": 0, "y": 0}\n]')),
    "keypoints-for-another-method": ("--keypoints needs a recipe of a method that trains on keypoints (spss_plus, points), not spss", _keypoints_for_another_method),
    "image-smaller-than-patch": ("image 96x72 is smaller than a 224x224 patch", _image_smaller_than_patch),
    "empty-data-folder": (DUBAI_HOW_TO, _empty_data_folder),
    "missing-data-folder": ("data folder does not exist", _missing_data_folder),
    "out-under-a-file": ("output folder is not writable (Not a directory)", _out_under_a_file),
    "predict-out-under-a-file": ("output folder is not writable (Not a directory)", _predict_out_under_a_file),
    "predict-out-is-a-folder": ("is a folder; --out takes the name of the PNG to write", _predict_out_is_a_folder),
    "predict-tile-not-multiple-of-16": ("40 must be a multiple of 16 and at least 32",
                                        _predict_tiling("--tile", 40, wrong="--tile")),
    "predict-overlap-too-large": ("16 must be at least 0 and below half the tile (16)",
                                  _predict_tiling("--tile", 32, "--overlap", 16, wrong="--overlap")),
    "evaluate-reflect-context-not-multiple-of-8": ("must be 0 or a positive multiple of 8, got 12",
                                                   _evaluate_with("--reflect-context", 12, wrong="--reflect-context")),
    "predict-reflect-context-not-multiple-of-8": ("must be 0 or a positive multiple of 8, got 12",
                                                  _predict_tiling("--reflect-context", 12, wrong="--reflect-context")),
    "predict-out-wrong-extension": ("--format colour writes PNG; name the output mask.png",
                                    _predict_with("--tile", 32, "--overlap", 8, out="mask.jpg")),
    "predict-image-too-large": ("image 40000x30000 is above kerasweak's limit of 1000000000 pixels; cut it into parts",
                                _predict_input(_huge_png)),
    "predict-folder-without-images": ("no images here (png, jpg, tif, bmp, gif, webp)", _predict_input(_empty_folder)),
    "not-a-model": ("not a kerasweak model folder (no kerasweak.json)", _not_a_model),
    "broken-model-metadata": ("kerasweak.json is not valid JSON "
                              "(Expecting property name enclosed in double quotes: line 1 column 2 (char 1))",
                              _broken_model_metadata),
    "mask-free-model-to-evaluate": ("model was trained on proportions-csv data, which has no masks to score it against; "
                                    "evaluate takes models trained on aerial-dubai, epfl-em, hippocampus, folder",
                                    _mask_free_model_to_evaluate),
    "size-model-on-other-data": (HIPPOCAMPUS_HOW_TO, _size_model_on_other_data),
    "too-few-patches": ("2 patches split into train 2, validation 0, test 0; every part needs at least one patch "
                        "(--max-samples 2 is too few)", _too_few_patches(2)),
    "empty-validation-part": ("5 patches split into train 4, validation 0, test 1; every part needs at least one patch "
                              "(--max-samples 5 is too few)", _too_few_patches(5)),
    "proportions-too-few-images": ("2 images split into train 2, validation 0; every part needs at least one image",
                                   _too_few_proportion_images),
    "proportions-without-header": ("line 1 is data (x.png,0.2,0.3,0.5), not a header: the first line must be "
                                   "'image,<class 1>,...,<class C>'", _headerless_proportions),
    "proportions-conflicting-rows": ("line 3: x.png is listed again with other proportions (line 2)",
                                     _proportions_row("x.png,1,0,0")),
    "duplicate-image-names": ("two images named 'image_part_001' (image_part_001.jpg, image_part_001.png) share one mask",
                              _duplicate_image_names),
    "evaluate-on-other-data": ("the data differ from the run's: its test patch 0 was cut from Tile 9/images/image_part_001.jpg, "
                               "here from Tile 1/images/image_part_001.jpg", _evaluate_on_other_data),
}


@pytest.fixture(scope="module")
def tiny_export(tmp_path_factory):
    """A tiny six-class U-Net exported by kerasweak.inference.export_segmenter, with Aerial Dubai metadata."""
    from kerasweak.data import DUBAI_CLASSES, DUBAI_PALETTE
    from kerasweak.models import build_unet
    from kerasweak.inference import export_segmenter
    from kerasweak.recipe import load_recipe

    recipe = load_recipe("dubai-spss")
    path = tmp_path_factory.mktemp("export") / "model"
    export_segmenter(build_unet(6, base_filters=2, channels=3), path, {
        "method": "spss", "recipe": recipe, "dataset": recipe["dataset"], "class_names": DUBAI_CLASSES,
        "palette": DUBAI_PALETTE.tolist(), "num_outputs": 6, "patch_size": 224, "channels": 3, "split": recipe["data"]})
    return path


def _files_in(folder):
    """Every file under `folder` (none if it is not a folder)."""
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else []


@pytest.mark.slow
@pytest.mark.parametrize("row", CLI_ROWS)
def test_bad_input_gets_one_line_naming_file_and_problem_and_leaves_nothing(tmp_path, request, row):
    case = Case(tmp_path, request)
    problem, make = CLI_ROWS[row]
    args, path = make(case)
    result = kerasweak(*args, cwd=tmp_path)
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [f"error: {path}: {problem}"]
    assert _files_in(case.out) == []


def test_the_catalogue_lists_every_row_with_its_exact_problem():
    """docs/bad-input.md names each row and its error text, as the tests above check them."""
    catalogue = CATALOGUE.read_text()
    for row, (problem, _) in CLI_ROWS.items():
        assert f"`{row}`" in catalogue, row
        assert problem in catalogue, (row, problem)
