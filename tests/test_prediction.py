"""`kerasweak predict` outputs (issue 30 point 6, issue 29): formats, legend, folders and globs, EXIF orientation, strips.

References: kerasweak.evaluation.predict_tiled (the whole-image blend the strips must equal), the exported
model's own probabilities, and Pillow's ImageOps.exif_transpose.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageOps

from helpers import kerasweak
from kerasweak.evaluation import predict_tiled
from kerasweak.prediction import legend, predict_files, tiled_strips


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """A tiny six-class U-Net exported with Aerial Dubai metadata."""
    import keras

    from kerasweak.data import DUBAI_CLASSES, DUBAI_PALETTE
    from kerasweak.inference import export_segmenter
    from kerasweak.models import build_unet
    from kerasweak.recipe import load_recipe

    keras.utils.set_random_seed(0)
    model = build_unet(6, base_filters=2)
    kernel, bias = model.get_layer("class_logits").get_weights()
    model.get_layer("class_logits").set_weights([kernel * 20, bias])  # class maps that vary over the image
    recipe = load_recipe("dubai-spss")
    path = tmp_path_factory.mktemp("predict") / "model"
    export_segmenter(model, path, {"method": "spss", "recipe": recipe, "dataset": recipe["dataset"],
                                   "class_names": DUBAI_CLASSES, "palette": DUBAI_PALETTE.tolist(), "num_outputs": 6,
                                   "patch_size": 224, "channels": 3, "split": recipe["data"]})
    return path


def _image(shape, seed=0):
    return np.random.default_rng(seed).integers(0, 256, shape).astype(np.uint8)


def _position_fn(batch):
    """A 'model' whose output depends on where the tile is (its mean) as well as on each pixel, so blending shows."""
    x = np.asarray(batch, np.float32)
    return np.concatenate([x[..., :1] / 255, np.broadcast_to(x.mean(axis=(1, 2, 3), keepdims=True) / 255, x[..., :1].shape)],
                          axis=-1)


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 130), st.integers(1, 130), st.sampled_from([32, 48, 64]), st.data())
def test_strips_put_together_equal_the_whole_image_blend(height, width, tile, data):
    overlap = data.draw(st.integers(0, tile // 2 - 1))
    image = _image((height, width, 1), seed=height * 131 + width)
    whole = predict_tiled(_position_fn, image, 2, tile, overlap)
    strips = list(tiled_strips(_position_fn, image, 2, tile, overlap))
    assert [start for start, _ in strips] == sorted({start for start, _ in strips})
    np.testing.assert_allclose(np.concatenate([maps for _, maps in strips]), whole, rtol=1e-6, atol=1e-7)


def test_index_and_probabilities_outputs_agree_with_the_model(tiny_model, tmp_path):
    Image.fromarray(_image((70, 90, 3))).save(tmp_path / "a.png")
    probabilities = tmp_path / "a.npy"
    predict_files(tiny_model, [tmp_path / "a.png"], probabilities, fmt="probabilities", tile=64, overlap=16)
    maps = np.load(probabilities)
    assert maps.dtype == np.float16 and maps.shape == (70, 90, 6)
    np.testing.assert_allclose(maps.astype(np.float32).sum(-1), 1.0, atol=1e-2)
    index = tmp_path / "a_index.png"
    predict_files(tiny_model, [tmp_path / "a.png"], index, fmt="index", tile=64, overlap=16)
    labels = np.asarray(Image.open(index))
    assert Image.open(index).mode == "L" and labels.shape == (70, 90)
    confident = np.sort(maps.astype(np.float32), -1)[..., -1] - np.sort(maps.astype(np.float32), -1)[..., -2] > 1e-2
    np.testing.assert_array_equal(labels[confident], maps.argmax(-1)[confident])  # float16 rounding can swap near-ties
    assert len(np.unique(labels)) > 1


def test_legend_shows_every_class_colour():
    from kerasweak.data import DUBAI_CLASSES, DUBAI_PALETTE

    colours = {tuple(c) for c in legend(DUBAI_CLASSES, DUBAI_PALETTE).reshape(-1, 3)}
    assert {tuple(int(v) for v in c) for c in DUBAI_PALETTE} <= colours


@pytest.mark.slow
def test_a_folder_and_a_glob_predict_every_image_with_a_progress_line_each(tiny_model, tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    for i, size in enumerate([(40, 50), (33, 70), (64, 64)]):
        Image.fromarray(_image(size + (3,), seed=i)).save(images / f"img{i}.png")
    (images / "notes.txt").write_text("not an image")
    result = kerasweak("predict", tiny_model, images, "--out", tmp_path / "masks", "--format", "index",
                       "--tile", 32, "--overlap", 8, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert [line.split()[0] for line in result.stdout.splitlines()[:3]] == ["[1/3]", "[2/3]", "[3/3]"]
    for i, (height, width) in enumerate([(40, 50), (33, 70), (64, 64)]):
        assert np.asarray(Image.open(tmp_path / "masks" / f"img{i}.png")).shape == (height, width)
    globbed = predict_files(tiny_model, [str(images / "img[01].png")], tmp_path / "globbed", tile=32, overlap=8)
    assert sorted(p.name for p in globbed) == ["img0.png", "img0_legend.png", "img0_overlay.png",
                                               "img1.png", "img1_legend.png", "img1_overlay.png"]


def test_exif_orientation_turns_the_image_upright_before_predicting(tiny_model, tmp_path):
    stored = _image((32, 64, 3))
    exif = Image.Exif()
    exif[0x0112] = 6  # displayed rotated 90° clockwise
    Image.fromarray(stored).save(tmp_path / "phone.jpg", exif=exif, quality=100)
    upright = np.asarray(ImageOps.exif_transpose(Image.open(tmp_path / "phone.jpg")))
    assert upright.shape == (64, 32, 3)
    predict_files(tiny_model, [tmp_path / "phone.jpg"], tmp_path / "phone_mask.png", tile=32, overlap=8)
    overlay = np.asarray(Image.open(tmp_path / "phone_mask_overlay.png")).astype(int)
    mask = np.asarray(Image.open(tmp_path / "phone_mask.png")).astype(int)
    assert mask.shape == (64, 32, 3)
    np.testing.assert_allclose(overlay, (0.5 * upright + 0.5 * mask).astype(np.uint8), atol=1)
