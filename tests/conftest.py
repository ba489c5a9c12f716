import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from kerasweak.data import DUBAI_PALETTE  # noqa: E402

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def write_fake_dubai(root, tiles=2, images_per_tile=2, size=(96, 72), palette_masks=True, seed=0):
    """A small Aerial Dubai tree in the Kaggle layout, classes as coloured blocks.

    Tile 2's masks are palette PNGs, like the real release; one mask has black pixels.
    """
    rng = np.random.default_rng(seed)
    root = Path(root) / "Semantic segmentation dataset"
    width, height = size
    for t in range(1, tiles + 1):
        (root / f"Tile {t}" / "images").mkdir(parents=True)
        (root / f"Tile {t}" / "masks").mkdir(parents=True)
        for i in range(1, images_per_tile + 1):
            labels = np.repeat(np.repeat(rng.integers(0, 6, size=(height // 8 + 1, width // 8 + 1)), 8, 0), 8, 1)[:height, :width]
            rgb = DUBAI_PALETTE[labels]
            if t == 1 and i == 1:
                rgb[:4, :4] = 0  # black, unlabelled pixels
            image = np.clip(rgb.astype(int) + rng.integers(-10, 10, rgb.shape), 0, 255).astype(np.uint8)
            name = f"image_part_{i:03d}"
            Image.fromarray(image).save(root / f"Tile {t}" / "images" / f"{name}.jpg", quality=95)
            mask = Image.fromarray(rgb)
            if palette_masks and t == 2:
                mask = mask.quantize(colors=8, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
            mask.save(root / f"Tile {t}" / "masks" / f"{name}.png")
    return root


@pytest.fixture
def fake_dubai(tmp_path):
    return write_fake_dubai(tmp_path / "data")


@pytest.fixture
def fake_epfl(tmp_path):
    """EPFL's TIFF-stack layout: four 64x64 grey slices, each with a bright 'mitochondrion' block."""
    import tifffile

    rng = np.random.default_rng(0)
    images = rng.integers(0, 120, (4, 64, 64), dtype=np.uint8)
    labels = np.zeros_like(images)
    for z in range(4):
        labels[z, 6 * z:6 * z + 20, 10:30] = 255
    images[labels == 255] += 120
    root = tmp_path / "data" / "epfl-em"
    root.mkdir(parents=True)
    tifffile.imwrite(root / "training.tif", images)
    tifffile.imwrite(root / "training_groundtruth.tif", labels)
    return root


TINY_RECIPE = """
extends = "dubai-spss"
name = "tiny-{method}"
method = "{method}"
[data]
patch_size = 32
[model]
base_filters = 2
[train]
epochs = 2
batch_size = 4
patience = 2
mixed_precision = false
"""


@pytest.fixture
def tiny_recipe(tmp_path):
    def make(method="spss"):
        path = tmp_path / f"tiny-{method}.toml"
        path.write_text(TINY_RECIPE.format(method=method))
        return path
    return make


@pytest.fixture
def shared_data():
    """The real datasets beside the checkout (present in CI), else the test is skipped."""
    if not (SHARED_DATA / "aerial-dubai").exists():
        pytest.skip("needs ../shared/data beside the checkout")
    return SHARED_DATA


def write_fake_hippocampus(root, volumes=3, depth=6, seed=0):
    """MSD Task04 layout: `volumes` NIfTI volumes of 36×52×depth, one random block of labels 1/2 per slice."""
    import nibabel

    rng = np.random.default_rng(seed)
    for v in range(volumes):
        labels = np.zeros((36, 52, depth), np.uint8)
        for z in range(depth):
            x, y = rng.integers(4, 14), rng.integers(4, 20)
            w, h = rng.integers(3, 12), rng.integers(3, 16)
            labels[x:x + w, y:y + h, z] = rng.integers(1, 3)
        image = (labels * 100 + rng.normal(0, 20, labels.shape)).astype(np.float32)
        for folder, array in (("imagesTr", image), ("labelsTr", labels)):
            (root / folder).mkdir(parents=True, exist_ok=True)
            nibabel.save(nibabel.Nifti1Image(array, np.eye(4)), root / folder / f"hippocampus_{v:03d}.nii.gz")
    return root


@pytest.fixture
def fake_hippocampus(tmp_path):
    """A --data folder holding a tiny hippocampus dataset (18 slices)."""
    write_fake_hippocampus(tmp_path / "data" / "hippocampus")
    return tmp_path / "data"


TINY_SETTINGS = """
[data]
patch_size = 32
[model]
base_filters = 2
[train]
epochs = 1
batch_size = 4
mixed_precision = false
"""
TINY_EDGE_RECIPE = 'extends = "{base}"\nname = "tiny-{base}"\n' + TINY_SETTINGS + "[semeda]\nedge_epochs = 1\n"
EDGE_RUNS = {  # recipe: (extra TOML, --seeds)
    "dubai-ppce": ("", 1),
    "dubai-sobel": ("[sobel]\nweight = 2\n", 1),
    "dubai-semeda": ("lambdas = [2, 1, 0.5]\n", 2),  # continues [semeda]
    "dubai-semeda-lambdas": ("[sweep]\nvalues = [[0, 0, 0], [4, 2, 0]]\n", 1),
}


@pytest.fixture(scope="session")
def edge_runs(tmp_path_factory):
    """Tiny 1-epoch runs of the SEMEDA comparison recipes on fake Aerial Dubai data, through the CLI: {recipe: OUT}.

    dubai-sobel has weight 2, dubai-semeda λ = 2, 1, 0.5 and 2 seeds, and the λ
    sweep two settings, so the tests can tell the recipe's settings from the defaults.
    """
    from test_cli import kerasweak

    root = tmp_path_factory.mktemp("edge")
    data = write_fake_dubai(root / "data")
    outs = {}
    for base, (extra, seeds) in EDGE_RUNS.items():
        recipe = root / f"tiny-{base}.toml"
        recipe.write_text(TINY_EDGE_RECIPE.format(base=base) + extra)
        outs[base] = root / base
        result = kerasweak("recipe", recipe, "--data", data, "--out", outs[base], "--seeds", seeds, cwd=root)
        assert result.returncode == 0, result.stderr
    return {**outs, "data": data}
