"""The README's Python API snippets run as written (each trains its first model to a lower loss), on small random arrays named as in each snippet's first comment."""

import re
from pathlib import Path

import numpy as np
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def api_snippets():
    """The ```python blocks of the README's "Python API" section, in order."""
    text = README.read_text(encoding="utf-8")
    section = text.split("## Python API", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def _write_folder(root, rng, count=10, side=224):
    """A generic dataset folder of `count` random RGB images of side² with three-class index masks."""
    from PIL import Image

    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    (root / "dataset.toml").write_text('classes = ["background", "road", "car"]\n')
    for i in range(count):
        mask = rng.integers(0, 3, (side, side)).astype(np.uint8)  # noise: validation stops improving early
        image = rng.integers(0, 256, (side, side, 3)).astype(np.uint8)
        Image.fromarray(image).save(root / "images" / f"image_{i}.png")
        Image.fromarray(mask).save(root / "masks" / f"image_{i}.png")
    return root


def _inputs(first_comment, rng, tmp_path):
    """Tiny inputs for the names a snippet's first comment declares (N = 8, 32×32; a folder of ten 224² images)."""
    n, h, w = 8, 32, 32
    if "generic dataset folder" in first_comment:
        return {"folder": _write_folder(tmp_path / "folder", rng)}
    grey = "(N, H, W, 1)" in first_comment
    images = rng.integers(0, 256, (n, h, w, 1 if grey else 3)).astype("float32")
    if "SemedaLoss" in first_comment or "class indices" in first_comment:
        masks = rng.integers(0, 6, (n, h, w)).astype("int32")
        masks[0, :4, :4] = 255
        return {"images": images, "masks": masks}
    if "has_mask" in first_comment:
        masks = np.zeros((n, h, w), dtype="float32")
        for i in range(n):
            masks[i, 4 + i:16 + i, 6:20] = 1.0
        return {"images": images, "masks": masks, "has_mask": (np.arange(n) < 3).astype("float32")}
    if grey:
        masks = (rng.random((n, h, w)) < 0.3).astype("int32")
        return {"images": images, "masks": masks, "proportions": masks.mean(axis=(1, 2))[:, None].astype("float32")}
    proportions = rng.dirichlet(np.ones(6), size=n).astype("float32")
    return {"images": images, "proportions": proportions}


def test_the_section_has_a_snippet_per_method():
    snippets = api_snippets()
    assert len(snippets) == 6
    for snippet, name in zip(snippets, ("build_spss", "build_spss_plus", "SizeSupervisedSegmenter", "SemedaLoss",
                                        "from_logits=True", "load_folder")):
        assert name in snippet


@pytest.mark.slow
@pytest.mark.parametrize("index", range(6), ids=["spss", "spss_plus", "sizes", "semeda", "logits", "folder"])
def test_snippet_runs_and_trains(index, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the SPSS snippet exports a SavedModel into the working folder
    snippet = api_snippets()[index]
    namespace = _inputs(snippet.splitlines()[0], np.random.default_rng(index), tmp_path)
    exec(compile(snippet, f"README.md snippet {index}", "exec"), namespace)
    first_trained = next(namespace[name] for name in ("spss", "spss_plus", "unet") if name in namespace)
    losses = first_trained.history.history["loss"]
    assert losses[-1] < losses[0]
    if "model" in namespace:  # the size fine-tuning ran to the end on finite losses
        assert len(namespace["model"].history.history["loss"]) == 40
        assert np.all(np.isfinite(namespace["model"].history.history["loss"]))
    if index == 0:
        assert namespace["class_maps"].shape == (8, 32, 32, 6)
        assert (tmp_path / "spss_savedmodel" / "saved_model.pb").is_file()
