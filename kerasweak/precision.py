"""The Keras dtype policy a recipe trains in: mixed_bfloat16 where the hardware computes bfloat16, else float32.

[train] mixed_precision = true asks for mixed_bfloat16, which halves a step's
time on CPUs with bfloat16 instructions (avx512_bf16 or amx_bf16 on x86, bf16 on
Arm) and on GPUs. A CPU without them emulates bfloat16: there a mixed_bfloat16
U-Net step took 10x as long as a float32 one (benchmarks/roofline.py, docs/benchmarks.md),
so the recipe trains in float32 and says so once.
"""

import functools
from pathlib import Path

import keras
import tensorflow as tf

BFLOAT16_CPU_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16"})


def cpu_flags(cpuinfo=Path("/proc/cpuinfo")):
    """The instruction-set flags /proc/cpuinfo lists (x86 "flags", Arm "Features"); None where it cannot be read."""
    try:
        lines = Path(cpuinfo).read_text().splitlines()
    except OSError:
        return None
    return {flag for line in lines if line.startswith(("flags", "Features")) for flag in line.split(":", 1)[1].split()}


def cpu_computes_bfloat16(cpuinfo=Path("/proc/cpuinfo")):
    """Whether the CPU has bfloat16 instructions; True where its flags cannot be read (trust the recipe)."""
    flags = cpu_flags(cpuinfo)
    return not flags or bool(flags & BFLOAT16_CPU_FLAGS)


@functools.cache
def _bfloat16_is_emulated():
    emulated = not tf.config.list_physical_devices("GPU") and not cpu_computes_bfloat16()
    if emulated:
        print("mixed_precision: this CPU has no bfloat16 instructions (avx512_bf16, amx_bf16), so mixed_bfloat16 "
              "would be emulated and several times slower: training in float32")
    return emulated


def dtype_policy(mixed_precision):
    """The policy name for [train] mixed_precision on this machine."""
    return "mixed_bfloat16" if mixed_precision and not _bfloat16_is_emulated() else "float32"


def set_precision(recipe):
    """Set the global Keras dtype policy of the recipe's [train] mixed_precision (see `dtype_policy`)."""
    keras.mixed_precision.set_global_policy(dtype_policy(recipe["train"]["mixed_precision"]))


def float32_copy(model):
    """`model` rebuilt to compute in float32 with the same weights; `model` itself if it already does.

    Exports use it: a SavedModel computes in the policy its layers were built
    under, so a model trained in mixed_bfloat16 would predict in bfloat16 wherever
    it is loaded, 10x slower on a CPU without bfloat16 instructions
    (benchmarks/export_dtype.py). Its variables are float32 already, so the copy
    holds exactly the trained weights; only the rounding of activations changes.
    """
    if all(layer.compute_dtype == "float32" for layer in model.layers):
        return model

    def in_float32(layer):
        config = layer.get_config()
        config["dtype"] = "float32"
        return layer.__class__.from_config(config)

    copy = keras.models.clone_model(model, clone_function=in_float32)
    copy.set_weights(model.get_weights())
    return copy
