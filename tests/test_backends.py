"""The backend-agnostic core (issue 30, point 4): layers, losses, metrics, ops.edges and the U-Net/SPSS builders on JAX.

Each check runs in a fresh Python process with KERAS_BACKEND=jax and TensorFlow
(and Pillow) made unimportable, so they also prove that this core needs neither.
Forward values are compared with the same computations (tests/backend_checks.py)
under TensorFlow in this process. Missing JAX (pip install ".[jax]") skips these
tests, unless KERASWEAK_REQUIRE_JAX=1 (.ci/run sets it) makes that a failure.
"""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

if importlib.util.find_spec("jax") is None:
    if os.environ.get("KERASWEAK_REQUIRE_JAX") == "1":
        raise RuntimeError('the backend tests need JAX (pip install ".[jax]")')
    pytest.skip('no JAX (pip install ".[jax]")', allow_module_level=True)

import backend_checks  # noqa: E402

CHECKS = Path(__file__).with_name("backend_checks.py")
# Runs the script named by argv[1] (its arguments after it) with TensorFlow and Pillow unimportable.
WITHOUT_TENSORFLOW = """
import importlib.abc, runpy, sys
class Blocked(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.partition(".")[0] in ("tensorflow", "PIL"):
            raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)", name=name)
sys.meta_path.insert(0, Blocked())
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""
IMPORTS = """
import kerasweak
import keras
import kerasweak.layers, kerasweak.losses, kerasweak.metrics, kerasweak.ops.edges, kerasweak.models.unet, kerasweak.models.spss
import kerasweak.proportion_losses
from kerasweak.constants import IGNORE_LABEL
from kerasweak.models import build_spss, build_spss_plus, build_spss_signals, build_unet, segmenter_of
registered = sorted(name for name in keras.saving.get_custom_objects() if name.startswith("kerasweak>"))
print(keras.backend.backend(), IGNORE_LABEL, *registered)
"""
GROUPS = {"layers": ("class_probabilities", "ProportionHead", "edge_aware_smoothness", "EdgeAwareSmoothness", "SemedaNet",
                     "GradientRamp", "ReflectPadding2D", "CoarseStart"),
          "losses": ("ProportionLoss", "PixelCrossEntropy", "KeypointLoss", "SobelEdgeLoss", "SemedaLoss",
                     "IntervalProportionLoss", "PseudoLabelLoss", "ClassPresenceLoss", "EntropyLoss"),
          "metrics": ("MeanIoU",),
          "edges": ("semantic_edges", "boundary_band", "sobel_edges"),
          "models": ("build_unet", "build_spss", "build_spss_plus", "segmenter_of")}


def _run_on_jax(*args, timeout=900):
    env = {**os.environ, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "2", "JAX_PLATFORMS": "cpu"}
    result = subprocess.run([sys.executable, "-c", WITHOUT_TENSORFLOW, *map(str, args)], capture_output=True, text=True,
                            env=env, timeout=timeout)
    assert result.returncode == 0, result.stderr[-4000:]
    return result.stdout


@pytest.fixture(scope="module")
def on_both(tmp_path_factory):
    """(TensorFlow forward values, JAX forward values, JAX fit histories) of tests/backend_checks.py."""
    if keras.backend.backend() != "tensorflow":
        pytest.skip("the reference values are TensorFlow's: run the suite under the default backend")
    folder = tmp_path_factory.mktemp("backends")
    inputs = backend_checks.make_inputs()
    np.savez(folder / "inputs.npz", **inputs)
    _run_on_jax(CHECKS, folder / "inputs.npz", folder / "jax.npz", folder / "fits.json")
    with np.load(folder / "jax.npz") as jax_values:
        jax_values = dict(jax_values)
    fits = json.loads((folder / "fits.json").read_text(encoding="utf-8"))
    assert fits["backend"] == "jax"
    return backend_checks.forward(inputs), jax_values, fits["fits"]


def test_the_core_imports_and_registers_without_tensorflow(tmp_path):
    """`import kerasweak` then `import keras` registers the core's classes on JAX; any TensorFlow import would raise."""
    (tmp_path / "imports.py").write_text(IMPORTS, encoding="utf-8")
    out = _run_on_jax(tmp_path / "imports.py", timeout=300).split()
    backend, ignore_label, *registered = out
    assert (backend, ignore_label) == ("jax", "255")
    assert registered == sorted(f"kerasweak>{name}" for name in ("ProportionHead", "EdgeAwareSmoothness", "SemedaNet",
                                                                  "ProportionLoss", "PixelCrossEntropy", "KeypointLoss",
                                                                  "SemedaLoss", "SobelEdgeLoss", "MeanIoU", "GradientRamp",
                                                                  "IntervalProportionLoss", "PseudoLabelLoss",
                                                                  "ClassPresenceLoss", "EntropyLoss", "WarmupCosine",
                                                                  "ReflectPadding2D", "CoarseStart"))


# The reflect-padded U-Net runs on 32×32 images (its bottleneck mirrors 2 pixels), four times the others' pixels
# through the same depth: oneDNN's and XLA's float32 round-off differ there by up to 2e-5.
LOOSER = {"build_unet_reflect": 1e-4}


@pytest.mark.slow
@pytest.mark.parametrize("group", GROUPS)
def test_forward_values_on_jax_equal_tensorflow(on_both, group):
    tensorflow_values, jax_values, _ = on_both
    names = [name for name in tensorflow_values if name.startswith(GROUPS[group])]
    assert names and set(names) <= set(jax_values)
    for name in names:
        tolerance = LOOSER.get(name, 1e-5)
        np.testing.assert_allclose(jax_values[name], tensorflow_values[name], rtol=tolerance, atol=tolerance, err_msg=name)


@pytest.mark.slow
def test_every_check_has_a_group(on_both):
    tensorflow_values, jax_values, _ = on_both
    assert set(tensorflow_values) == set(jax_values)
    assert all(name.startswith(sum(GROUPS.values(), ())) for name in tensorflow_values)


@pytest.mark.slow
def test_jit_compiled_fits_on_jax_train(on_both):
    fits = on_both[2]
    assert set(fits) == {"spss", "pixel", "spss_plus", "sobel", "semeda"}
    for check, history in fits.items():
        assert all(len(values) == 2 and np.all(np.isfinite(values)) for values in history.values()), check
        assert history["loss"][1] < history["loss"][0], check
    assert all(0.0 <= value <= 1.0 for value in fits["pixel"]["miou"])
