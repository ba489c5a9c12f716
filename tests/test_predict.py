"""Whole-image prediction: `kerasweak predict` on images the size of a whole EM slice and a whole Dubai tile, and
the tile blending of kerasweak.evaluation.predict_tiled (no seams, exact weights)."""

import numpy as np
import pytest
from PIL import Image

from kerasweak.evaluation import in_reflect_context, predict_tiled
from helpers import kerasweak

EM_SLICE = (768, 1024)  # height, width of an EPFL slice
DUBAI_TILE = (1480, 2149)  # height, width of the largest Aerial Dubai tile (Tile 8)
TILE, OVERLAP = 512, 128  # multiples of 16, so every tile's pooling grid lines up with a whole-image pass
LOGIT_SCALE = 20.0  # an untrained U-Net's probabilities hardly vary; scaled logits span most of [0, 1]


def _tiny_unet(num_outputs, channels, seed=0):
    """A random U-Net (base_filters 4) whose last layer's kernel is scaled, so its class maps vary a lot over an image."""
    import keras

    from kerasweak.models import build_unet

    keras.utils.set_random_seed(seed)
    model = build_unet(num_outputs, base_filters=4, channels=channels)
    logits = model.get_layer("class_logits")
    kernel, bias = logits.get_weights()
    logits.set_weights([kernel * LOGIT_SCALE, bias])
    return model


def _export(model, path, dataset, class_names, palette):
    from kerasweak.inference import export_segmenter
    from kerasweak.recipe import load_recipe

    recipe = load_recipe("em-spss" if dataset == "epfl-em" else "dubai-spss")
    export_segmenter(model, path, {
        "method": "spss", "recipe": recipe, "dataset": dataset, "class_names": class_names,
        "palette": np.asarray(palette).tolist(), "num_outputs": model.output_shape[-1],
        "patch_size": recipe["data"]["patch_size"], "channels": model.input_shape[-1], "split": recipe["data"]})
    return path


@pytest.fixture(scope="module")
def em_model():
    return _tiny_unet(1, channels=1)


@pytest.fixture(scope="module")
def dubai_model():
    return _tiny_unet(6, channels=3, seed=1)


def _random_image(shape, seed=0):
    """Smooth random blobs plus noise, so the class maps have structure at every scale."""
    import cv2

    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (shape[0] // 32 + 1, shape[1] // 32 + 1) + shape[2:], dtype=np.uint8)
    smooth = cv2.resize(coarse, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC).reshape(shape)
    return np.clip(smooth.astype(int) + rng.integers(-40, 40, shape), 0, 255).astype(np.uint8)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["em-slice", "dubai-tile"])
def test_predict_writes_mask_and_overlay_of_a_whole_image_at_its_exact_size(tmp_path, request, kind):
    from kerasweak.data import DUBAI_CLASSES, DUBAI_PALETTE, EPFL_CLASSES, EPFL_PALETTE

    if kind == "em-slice":
        model = _export(request.getfixturevalue("em_model"), tmp_path / "model", "epfl-em", EPFL_CLASSES, EPFL_PALETTE)
        image, palette = _random_image(EM_SLICE), EPFL_PALETTE
    else:
        model = _export(request.getfixturevalue("dubai_model"), tmp_path / "model", "aerial-dubai", DUBAI_CLASSES,
                        DUBAI_PALETTE)
        image, palette = _random_image(DUBAI_TILE + (3,)), DUBAI_PALETTE
    image_path = tmp_path / "whole.png"
    Image.fromarray(image).save(image_path)
    out = tmp_path / "masks" / "whole_mask.png"
    result = kerasweak("predict", model, image_path, "--out", out, "--tile", TILE, "--overlap", OVERLAP, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    height, width = image.shape[:2]
    for path in (out, out.with_name("whole_mask_overlay.png")):
        picture = Image.open(path)
        assert picture.size == (width, height) and picture.mode == "RGB", path
    colours = np.unique(np.asarray(Image.open(out)).reshape(-1, 3), axis=0)
    assert {tuple(c) for c in colours} <= {tuple(c) for c in palette} and len(colours) > 1


@pytest.mark.slow
def test_predict_with_reflect_context_writes_the_tiles_predicted_in_mirrored_context(tmp_path, dubai_model):
    """`predict --reflect-context 16` equals predict_tiled over the model wrapped in evaluation.in_reflect_context,
    and differs from plain tiling along the image's border, where the zero padding was."""
    from kerasweak.data import DUBAI_CLASSES, DUBAI_PALETTE

    model = _export(dubai_model, tmp_path / "model", "aerial-dubai", DUBAI_CLASSES, DUBAI_PALETTE)
    image = _random_image((200, 300, 3), seed=3)
    Image.fromarray(image).save(tmp_path / "image.png")
    written = {}
    for context in (0, 16):
        out = tmp_path / f"maps_{context}.npy"
        result = kerasweak("predict", model, tmp_path / "image.png", "--out", out, "--format", "probabilities",
                           "--tile", 128, "--overlap", 32, "--reflect-context", context, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        written[context] = np.load(out).astype(np.float32)
    predict_fn = lambda batch: np.asarray(dubai_model(batch, training=False))  # noqa: E731
    expected = predict_tiled(in_reflect_context(predict_fn, 16), image, 6, 128, 32)
    np.testing.assert_allclose(written[16], expected, atol=2e-3)  # float16 storage
    assert np.abs(written[16] - written[0])[:, :4].max() > 0.05  # the left border changed


@pytest.mark.parametrize("kind", ["em-slice", "dubai-tile"])
def test_tiled_probabilities_match_one_whole_image_pass_away_from_the_border(request, kind):
    """A U-Net's receptive field is bounded (zero padding at a tile edge changes predictions within ~32 px of it), so
    blended tiles overlapping by 128 match a single pass of the whole image; without overlap the seams show."""
    model = request.getfixturevalue("em_model" if kind == "em-slice" else "dubai_model")
    shape = EM_SLICE + (1,) if kind == "em-slice" else (768, 1024, 3)  # RGB, 6 classes; one pass needs sides divisible by 16
    image = _random_image(shape, seed=2)
    predict_fn = lambda batch: np.asarray(model(batch, training=False))
    whole = predict_fn(image[None].astype(np.float32))[0]
    assert whole.max() - whole.min() > 0.3  # the class maps vary, so a seam would show
    tiled = predict_tiled(predict_fn, image, whole.shape[-1], TILE, OVERLAP)
    interior = (slice(64, -64), slice(64, -64))  # both passes zero-pad the image border differently from the tiles
    difference = np.abs(tiled - whole)[interior]
    assert difference.max() < 0.02 and difference.mean() < 1e-4, (difference.max(), difference.mean())
    seams = np.abs(predict_tiled(predict_fn, image, whole.shape[-1], TILE, overlap=0) - whole)[interior]
    assert seams.max() > 0.1  # the tolerance above would catch unblended tile edges


@pytest.mark.parametrize("shape,tile,overlap", [(DUBAI_TILE + (3,), 448, 64), (EM_SLICE + (1,), 512, 128),
                                                ((100, 37, 1), 64, 16), ((300, 301, 3), 96, 48)])
def test_blend_weights_give_a_constant_model_exactly_its_constant_everywhere(shape, tile, overlap):
    constants = np.array([0.5, 0.25, 0.125, 0.0625, 0.03125, 0.03125], np.float32)  # powers of 2: float32 sums are exact
    constant_fn = lambda batch: np.broadcast_to(constants, batch.shape[:3] + constants.shape)
    tiled = predict_tiled(constant_fn, np.zeros(shape, np.uint8), len(constants), tile, overlap)
    assert tiled.shape == shape[:2] + constants.shape
    np.testing.assert_array_equal(tiled, np.broadcast_to(constants, tiled.shape))
