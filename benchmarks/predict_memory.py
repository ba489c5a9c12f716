"""Peak memory of `kerasweak predict` on a large generated image: strips of tiles keep it bounded.

Exports a tiny random six-class U-Net (base_filters 2; the weights do not matter
for memory), writes a SIDE × SIDE RGB PNG of smooth noise, then runs
`kerasweak predict` on it in a subprocess for each --format and prints the
child's peak RSS beside the image size and the bytes the whole image's float32
class maps would take (what the strips avoid holding).

    python benchmarks/predict_memory.py [--side 12000] [--tile 448] [--overlap 64]
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _export(folder):
    import keras

    from kerasweak.data import DUBAI_CLASSES, DUBAI_PALETTE
    from kerasweak.inference import export_segmenter
    from kerasweak.models import build_unet
    from kerasweak.recipe import load_recipe

    keras.utils.set_random_seed(0)
    recipe = load_recipe("dubai-spss")
    path = Path(folder) / "model"
    export_segmenter(build_unet(6, base_filters=2), path, {
        "method": "spss", "recipe": recipe, "dataset": recipe["dataset"], "class_names": DUBAI_CLASSES,
        "palette": DUBAI_PALETTE.tolist(), "num_outputs": 6, "patch_size": 224, "channels": 3, "split": recipe["data"]})
    return path


def _image(folder, side):
    import cv2
    import numpy as np

    coarse = np.random.default_rng(0).integers(0, 256, (side // 64 + 1, side // 64 + 1, 3), dtype=np.uint8)
    path = Path(folder) / f"large_{side}.png"
    cv2.imwrite(str(path), cv2.resize(coarse, (side, side), interpolation=cv2.INTER_LINEAR))
    return path


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--side", type=int, default=12000)
    parser.add_argument("--tile", type=int, default=448)
    parser.add_argument("--overlap", type=int, default=64)
    parser.add_argument("--formats", default="colour,probabilities")
    args = parser.parse_args()
    entry = Path(sys.executable).parent / "kerasweak"
    with tempfile.TemporaryDirectory() as folder:
        model, image = _export(folder), _image(folder, args.side)
        full_maps = args.side * args.side * 6 * 4 / 2 ** 30
        print(f"image {args.side}x{args.side} ({args.side ** 2 / 1e6:.0f} Mpx, {args.side ** 2 * 3 / 2 ** 30:.2f} GiB as RGB); "
              f"whole-image float32 class maps would be {full_maps:.2f} GiB")
        for fmt in args.formats.split(","):
            out = Path(folder) / ("mask.npy" if fmt == "probabilities" else "mask.png")
            start = time.perf_counter()
            child = subprocess.Popen([str(entry), "predict", str(model), str(image), "--out", str(out), "--format", fmt,
                                      "--tile", str(args.tile), "--overlap", str(args.overlap)], stdout=subprocess.DEVNULL)
            _, status, usage = os.wait4(child.pid, 0)  # this child's own peak, not the maximum over all children
            if status:
                sys.exit(f"kerasweak predict failed (status {status})")
            peak = usage.ru_maxrss / 2 ** 20  # KiB -> GiB
            print(f"--format {fmt:13s} {args.side}x{args.side}: peak RSS {peak:.2f} GiB, {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
