"""Peak memory of `kerasweak train pixel DIR` on a generic folder larger than the 4 GB target: LazyPatches keep it bounded.

Generates IMAGES RGB JPEG images of SIDE × SIDE (smooth noise) with six-class
index PNG masks, runs `kerasweak train pixel DIR --epochs 1 --base-filters 4
--batch-size 8` on it in a child process and prints the child's peak RSS
beside the folder's decoded size (what the in-memory path held). The same
child on a folder of --compare images, small enough to stay in memory
(kerasweak.data.folder_lazy.IN_MEMORY_BYTES), is the comparison. Base filters
4 keep the epoch short on a CPU; the model's size does not change the data's memory.

    python benchmarks/folder_memory.py [--images 2000] [--side 1024] [--compare 150] [--max-samples N]
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CLASSES = ("background", "building", "road", "water", "vegetation", "land")
TRAIN = ["--epochs", "1", "--base-filters", "4", "--batch-size", "8"]


def write_folder(root, images, side, seed=0):
    """A generic folder of `images` smooth-noise JPEGs of side² with block-class index PNG masks; returns it."""
    import cv2

    rng = np.random.default_rng(seed)
    root = Path(root)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    (root / "dataset.toml").write_text("classes = [" + ", ".join(f'"{name}"' for name in CLASSES) + "]\n")
    for i in range(images):
        coarse = rng.integers(0, 256, (side // 64 + 1, side // 64 + 1, 3), dtype=np.uint8)
        picture = cv2.resize(coarse, (side, side), interpolation=cv2.INTER_LINEAR)
        labels = rng.integers(0, len(CLASSES), (side // 128 + 1, side // 128 + 1), dtype=np.uint8)
        mask = cv2.resize(labels, (side, side), interpolation=cv2.INTER_NEAREST)
        cv2.imwrite(str(root / "images" / f"img_{i:04d}.jpg"), picture, [cv2.IMWRITE_JPEG_QUALITY, 90])
        cv2.imwrite(str(root / "masks" / f"img_{i:04d}.png"), mask)
    return root


def train_peak(folder, out, max_samples=None):
    """(peak RSS in GiB, seconds) of `kerasweak train pixel` on `folder` in a child process."""
    entry = Path(sys.executable).parent / "kerasweak"
    extra = ["--max-samples", str(max_samples)] if max_samples else []
    start = time.perf_counter()
    child = subprocess.Popen([str(entry), "train", "pixel", str(folder), "--out", str(out), *TRAIN, *extra],
                             stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)  # this child's own peak, not the maximum over all children
    if status:
        sys.exit(f"kerasweak train failed (status {status})")
    return usage.ru_maxrss / 2 ** 20, time.perf_counter() - start  # KiB -> GiB


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--side", type=int, default=1024)
    parser.add_argument("--compare", type=int, default=150, help="images of the in-memory comparison folder (0: none)")
    parser.add_argument("--max-samples", type=int, help="train on only this many patches (a stated deviation)")
    args = parser.parse_args()
    decoded = args.side * args.side * (len("RGB") + 1) / 2 ** 30  # image and mask bytes per image, in GiB
    with tempfile.TemporaryDirectory() as tmp:
        runs = [("lazy", args.images)] + ([("in memory", args.compare)] if args.compare else [])
        for label, images in runs:
            start = time.perf_counter()
            folder = write_folder(Path(tmp) / f"folder_{images}", images, args.side)
            print(f"{label}: {images} images {args.side}x{args.side} with masks, {images * decoded:.2f} GiB decoded "
                  f"(written in {time.perf_counter() - start:.0f} s)", flush=True)
            peak, seconds = train_peak(folder, Path(tmp) / f"run_{images}", args.max_samples if label == "lazy" else None)
            samples = f", --max-samples {args.max_samples}" if args.max_samples and label == "lazy" else ""
            print(f"{label}: kerasweak train pixel {' '.join(TRAIN)}{samples}: peak RSS {peak:.2f} GiB, {seconds:.0f} s",
                  flush=True)


if __name__ == "__main__":
    main()
