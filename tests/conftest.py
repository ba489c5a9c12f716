import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

from helpers import (EDGE_RUNS, SHARED_DATA, kerasweak, write_fake_dubai, write_fake_epfl,  # noqa: E402
                     write_fake_hippocampus, write_recipe)


@pytest.fixture
def fake_dubai(tmp_path):
    return write_fake_dubai(tmp_path / "data")


@pytest.fixture
def fake_epfl(tmp_path):
    """EPFL's TIFF-stack layout: four 64x64 grey slices, each with a bright 'mitochondrion' block."""
    return write_fake_epfl(tmp_path / "data" / "epfl-em")


@pytest.fixture
def tiny_recipe(tmp_path):
    """make(method=None, **sections) -> the path of a tiny recipe in tmp_path (helpers.write_recipe).

    `tiny_recipe("pixel")` is tiny-pixel.toml, dubai-spss with method pixel;
    `tiny_recipe(extends="em-spss-plus", name="tiny-em", train={"epochs": 1})` a tiny em-spss-plus.
    """
    def make(method=None, *, name=None, extends="dubai-spss", **sections):
        name = name or f"tiny-{method or extends}"
        if method is not None:
            sections["method"] = method
        return write_recipe(tmp_path / f"{name}.toml", extends=extends, name=name, **sections)
    return make


@pytest.fixture
def shared_data():
    """The real datasets beside the checkout (present in CI), else the test is skipped."""
    if not (SHARED_DATA / "aerial-dubai").exists():
        pytest.skip("needs ../shared/data beside the checkout")
    return SHARED_DATA


@pytest.fixture
def fake_hippocampus(tmp_path):
    """A --data folder holding a tiny hippocampus dataset (18 slices)."""
    write_fake_hippocampus(tmp_path / "data" / "hippocampus")
    return tmp_path / "data"


@pytest.fixture(scope="session")
def edge_runs(tmp_path_factory):
    """Tiny 1-epoch runs of the SEMEDA comparison recipes on fake Aerial Dubai data, through the CLI: {recipe: OUT}.

    dubai-sobel has weight 2, dubai-semeda λ = 2, 1, 0.5 and 2 seeds, and the λ
    sweep two settings, so the tests can tell the recipe's settings from the defaults
    (helpers.EDGE_RUNS).
    """
    root = tmp_path_factory.mktemp("edge")
    data = write_fake_dubai(root / "data")
    outs = {}
    for base, (sections, seeds) in EDGE_RUNS.items():
        recipe = write_recipe(root / f"tiny-{base}.toml", extends=base, train={"epochs": 1}, **sections)
        outs[base] = root / base
        result = kerasweak("recipe", recipe, "--data", data, "--out", outs[base], "--seeds", seeds, cwd=root)
        assert result.returncode == 0, result.stderr
    return {**outs, "data": data}
