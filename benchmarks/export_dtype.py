"""Exports compute in float32: predict time of a mixed_bfloat16 U-Net exported as trained and as kerasweak exports it.

A SavedModel computes in the dtype policy its layers were built under. A run
trained in mixed_bfloat16 (on a CPU with bfloat16 instructions or a GPU),
exported as it is, would predict in bfloat16 wherever it is loaded; a CPU
without those instructions emulates them (roofline.py shows it for the training
step). `kerasweak.inference.export_segmenter` therefore exports a float32 copy
(`kerasweak.precision.float32_copy`). This builds the dubai-spss U-Net (16
filters, 6 classes) under mixed_bfloat16, writes it both ways with the same
serving contract, loads both back and times `predict` on the same batch,
printing seconds per batch, their ratio and the largest class-map difference.

    python benchmarks/export_dtype.py [--batch 16] [--size 224] [--repeats 3]
"""

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from kerasweak.inference import export_segmenter, load_export  # noqa: E402
from kerasweak.models import build_unet  # noqa: E402
from kerasweak.precision import cpu_computes_bfloat16  # noqa: E402
from kerasweak.serving import write_savedmodel  # noqa: E402

METADATA = {"method": "spss", "recipe": {}, "dataset": "benchmark", "class_names": list("012345"),
            "palette": [[0, 0, 0]] * 6, "num_outputs": 6, "channels": 3}


def as_trained(model, folder):
    """Export `model` in the policy it was built under (what export_segmenter did before float32_copy)."""
    write_savedmodel(model, folder, METADATA)
    (Path(folder) / "kerasweak.json").write_text(json.dumps(METADATA))


def seconds(predict_fn, batch, repeats):
    """Best of `repeats` timed calls after one warm-up call."""
    predict_fn(batch)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        predict_fn(batch)
        best = min(best, time.perf_counter() - start)
    return best


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    batch = np.random.default_rng(0).integers(0, 256, (args.batch, args.size, args.size, 3)).astype(np.float32)
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    model = build_unet(6, base_filters=16, channels=3)
    keras.mixed_precision.set_global_policy("float32")
    with tempfile.TemporaryDirectory() as tmp:
        as_trained(model, Path(tmp) / "bfloat16")
        export_segmenter(model, Path(tmp) / "float32", METADATA)
        bfloat16, float32 = (load_export(Path(tmp) / name)[0] for name in ("bfloat16", "float32"))
        bfloat16_seconds, float32_seconds = seconds(bfloat16, batch, args.repeats), seconds(float32, batch, args.repeats)
        difference = float(np.abs(bfloat16(batch) - float32(batch)).max())
    print(f"CPU computes bfloat16: {cpu_computes_bfloat16()}; batch {args.batch} x {args.size}x{args.size}")
    print(f"exported as trained (mixed_bfloat16): {bfloat16_seconds:.3f} s a batch")
    print(f"exported by kerasweak (float32):      {float32_seconds:.3f} s a batch")
    print(f"ratio: {bfloat16_seconds / float32_seconds:.2f}; largest class-map difference {difference:.4f}")


if __name__ == "__main__":
    main()
