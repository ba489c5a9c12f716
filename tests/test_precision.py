"""[train] mixed_precision trains in mixed_bfloat16 only where the hardware computes bfloat16."""

import json

import keras
import pytest

from helpers import kerasweak
from kerasweak import precision

X86_WITHOUT_BF16 = "processor\t: 0\nflags\t\t: fpu sse2 avx avx2 fma\n\nprocessor\t: 1\nflags\t\t: fpu sse2 avx avx2 fma\n"
X86_WITH_BF16 = "processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16 amx_tile\n"
ARM_WITH_BF16 = "processor\t: 0\nFeatures\t: fp asimd sve bf16 i8mm\n"


@pytest.mark.parametrize("text, native", [(X86_WITHOUT_BF16, False), (X86_WITH_BF16, True), (ARM_WITH_BF16, True)])
def test_the_cpu_flags_say_whether_bfloat16_is_computed_natively(tmp_path, text, native):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(text)
    assert precision.cpu_computes_bfloat16(cpuinfo) is native


def test_flags_are_read_from_every_flags_line_and_an_unreadable_file_trusts_the_recipe(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(X86_WITHOUT_BF16)
    assert precision.cpu_flags(cpuinfo) == {"fpu", "sse2", "avx", "avx2", "fma"}
    assert precision.cpu_flags(tmp_path / "missing") is None
    assert precision.cpu_computes_bfloat16(tmp_path / "missing") is True


@pytest.fixture
def machine(monkeypatch):
    """Set whether this machine has a GPU and bfloat16 CPU instructions; restores the float32 policy after."""
    def make(gpu, cpu_bfloat16):
        precision._bfloat16_is_emulated.cache_clear()
        monkeypatch.setattr(precision.tf.config, "list_physical_devices", lambda kind=None: ["gpu:0"] if gpu else [])
        monkeypatch.setattr(precision, "cpu_computes_bfloat16", lambda: cpu_bfloat16)
    yield make
    precision._bfloat16_is_emulated.cache_clear()
    keras.mixed_precision.set_global_policy("float32")


@pytest.mark.parametrize("gpu, cpu_bfloat16, policy", [(False, False, "float32"), (False, True, "mixed_bfloat16"),
                                                       (True, False, "mixed_bfloat16")])
def test_mixed_precision_falls_back_to_float32_only_on_a_cpu_that_emulates_bfloat16(machine, gpu, cpu_bfloat16, policy):
    machine(gpu, cpu_bfloat16)
    precision.set_precision({"train": {"mixed_precision": True}})
    assert keras.mixed_precision.global_policy().name == policy
    precision.set_precision({"train": {"mixed_precision": False}})
    assert keras.mixed_precision.global_policy().name == "float32"


def test_the_fallback_is_said_once_per_process(machine, capsys):
    machine(gpu=False, cpu_bfloat16=False)
    for _ in range(3):  # one call per seed
        precision.set_precision({"train": {"mixed_precision": True}})
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and "no bfloat16 instructions" in lines[0] and "float32" in lines[0]


@pytest.mark.slow
def test_a_run_records_the_dtype_policy_it_trained_in_and_says_why_where_it_is_not_the_recipes(tmp_path, fake_dubai,
                                                                                              tiny_recipe):
    recipe = tiny_recipe("spss", train={"epochs": 1, "mixed_precision": True})
    out = tmp_path / "out"
    result = kerasweak("recipe", recipe, "--data", fake_dubai, "--out", out, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    expected = precision.dtype_policy(True)  # this machine's answer: float32 on a CPU without bfloat16 instructions
    assert json.loads((out / "seed_0" / "metrics.json").read_text())["dtype_policy"] == expected
    assert ("training in float32" in result.stdout) == (expected == "float32")


@pytest.mark.slow
def test_a_run_trained_in_mixed_bfloat16_scores_its_test_patches_as_its_float32_export_does(tmp_path, fake_dubai,
                                                                                            tiny_recipe, machine):
    """Reference: `evaluate` on the export, which computes in float32 (precision.float32_copy)."""
    from kerasweak.inference import evaluate_export
    from kerasweak.recipe import load_recipe
    from kerasweak.runner import run_recipe

    machine(gpu=False, cpu_bfloat16=True)  # so the recipe's mixed_precision trains in mixed_bfloat16 here too
    recipe = load_recipe(tiny_recipe("spss", train={"epochs": 1, "mixed_precision": True}))
    results = run_recipe(recipe, data=fake_dubai, out=tmp_path / "out", verbose=0, echo=lambda *line: None)
    keras.mixed_precision.set_global_policy("float32")
    seed = results["per_seed"][0]
    assert seed["dtype_policy"] == "mixed_bfloat16"
    exported = evaluate_export(tmp_path / "out" / "model", data=fake_dubai)
    assert exported["miou"] == pytest.approx(seed["miou"], abs=1e-6)
    assert exported["accuracy"] == pytest.approx(seed["accuracy"], abs=1e-6)
