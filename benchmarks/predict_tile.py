"""Whole-image prediction: overlapping tiles vs one whole-image pass, same model, same process.

Prints megapixels per second of each, their ratio, how far the blended tiled
class maps are from the single-pass maps, and the process's peak memory.

    python benchmarks/predict_tile.py MODEL_DIR IMAGE [--tile 448] [--overlap 64]
e.g. python benchmarks/predict_tile.py runs/dubai-spss/model \
       "../shared/data/aerial-dubai/Semantic segmentation dataset/Tile 8/images/image_part_001.jpg"
"""

import argparse
import os
import resource
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from kerasweak.data import read_image  # noqa: E402
from kerasweak.evaluation import predict_tiled  # noqa: E402
from kerasweak.inference import load_export  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("image")
    parser.add_argument("--tile", type=int, default=448)
    parser.add_argument("--overlap", type=int, default=64)
    args = parser.parse_args()
    predict_fn, meta = load_export(args.model)
    image = read_image(args.image, channels=meta["channels"])
    height, width = image.shape[:2]
    megapixels = height * width / 1e6

    predict_tiled(predict_fn, image[:args.tile, :args.tile], meta["num_outputs"], args.tile, args.overlap)  # warm up
    start = time.perf_counter()
    tiled = predict_tiled(predict_fn, image, meta["num_outputs"], args.tile, args.overlap)
    tiled_seconds = time.perf_counter() - start
    tiled_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    padded = np.pad(image, ((0, -height % 16), (0, -width % 16), (0, 0)), mode="reflect")
    start = time.perf_counter()
    whole = np.asarray(predict_fn(padded[None].astype(np.float32)))[0, :height, :width]
    whole_seconds = time.perf_counter() - start
    whole_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    agreement = float((tiled.argmax(-1) == whole.argmax(-1)).mean()) if tiled.shape[-1] > 1 else float(((tiled >= .5) == (whole >= .5)).mean())
    print(f"image {width}x{height} ({megapixels:.2f} MP), tile {args.tile}, overlap {args.overlap}")
    print(f"tiled:  {tiled_seconds:.2f} s, {megapixels / tiled_seconds:.2f} MP/s, peak RSS so far {tiled_peak:.0f} MiB")
    print(f"whole:  {whole_seconds:.2f} s, {megapixels / whole_seconds:.2f} MP/s, peak RSS so far {whole_peak:.0f} MiB")
    print(f"tiled/whole time ratio {tiled_seconds / whole_seconds:.2f}; max |Δprob| {np.abs(tiled - whole).max():.3f}; "
          f"label agreement {100 * agreement:.2f}%")


if __name__ == "__main__":
    main()
