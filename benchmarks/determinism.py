"""What `kerasweak recipe --deterministic` costs: SPSS training-step time with and without TF op determinism, in one process.

Two identical models are traced and warmed up, one with op determinism off and
one with it on (kernels are chosen when first run), then their steps are
interleaved, switching the process-wide flag before each step, so machine load
affects both alike. Prints the median step times and their ratio:

    python benchmarks/determinism.py                                     # quick: batch 8, 64², 8 base filters
    python benchmarks/determinism.py --size 224 --batch 16 --base-filters 16 --steps 10   # the recipes' setting

Public TensorFlow can only switch determinism on, so the benchmark uses the
private switch behind `tf.config.experimental.enable_op_determinism`.
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from tensorflow.python.util import _pywrap_determinism  # noqa: E402

from kerasweak import losses, models  # noqa: E402
from timing import random_proportion_batch  # noqa: E402  (benchmarks/timing.py)

NUM_CLASSES = 6


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--base-filters", type=int, default=8)
    args = parser.parse_args()
    images, proportions = random_proportion_batch(args.batch, NUM_CLASSES, args.size)
    runs = {}
    for deterministic in (False, True):
        _pywrap_determinism.enable(deterministic)
        keras.utils.set_random_seed(0)
        model = models.build_spss(models.build_unet(NUM_CLASSES, base_filters=args.base_filters))
        model.compile(keras.optimizers.Adam(1e-3), losses.ProportionLoss())
        model.train_on_batch(images, proportions)  # trace and warm up
        runs[deterministic] = model
    times = {deterministic: [] for deterministic in runs}
    for _ in range(args.steps):
        for deterministic, model in runs.items():
            _pywrap_determinism.enable(deterministic)
            start = time.perf_counter()
            model.train_on_batch(images, proportions)
            times[deterministic].append(time.perf_counter() - start)
    off, on = (float(np.median(times[d])) for d in (False, True))
    print(f"op determinism off {off:.4f} s/step, on {on:.4f} s/step, on/off = {on / off:.3f}")
    print(f"(SPSS U-Net, batch {args.batch}, {args.size}², base filters {args.base_filters}, float32, "
          f"median of {args.steps} interleaved steps)")


if __name__ == "__main__":
    main()
