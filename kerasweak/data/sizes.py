"""Object sizes read from a user's CSV file, for size supervision without masks.

CSV format: a header `image,size`, then one row per image: its name as the
dataset reader names it (PatchSet.sources, e.g. `imagesTr/hippocampus_001.nii.gz[z=12]`)
and its object size, 2 · the maximum Chebyshev distance to the background, in pixels.
"""

import csv
import math
from pathlib import Path

import numpy as np

from ..errors import KerasweakError

HEADER = ["image", "size"]
SIZE_CHUNK = 512  # masks per object_size call, bounding the level sets held in memory


def mask_sizes(masks):
    """(N,) float32 object sizes (2 · max Chebyshev distance) of (N, H, W) masks."""
    from ..ops import object_size

    return np.concatenate([object_size(masks[i:i + SIZE_CHUNK]).numpy() for i in range(0, len(masks), SIZE_CHUNK)]
                          or [np.zeros(0)]).astype(np.float32)


def read_sizes_csv(path):
    """{image name: float size} from a sizes CSV; a bad row is an error naming the file and line."""
    path = Path(path)
    try:
        with open(path, newline="") as handle:
            rows = [row for row in csv.reader(handle) if any(cell.strip() for cell in row)]
    except FileNotFoundError:
        raise KerasweakError("sizes file not found", path) from None
    except (UnicodeDecodeError, csv.Error) as err:
        raise KerasweakError(f"not a readable CSV file ({err})", path) from None
    if not rows or [cell.strip().lower() for cell in rows[0]] != HEADER:
        raise KerasweakError("expected a header 'image,size' and one row per image", path)
    sizes = {}
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != 2:
            raise KerasweakError(f"line {line}: expected 2 columns (image, size), got {len(row)}", path)
        image, text = row[0].strip(), row[1].strip()
        try:
            size = float(text)
        except ValueError:
            raise KerasweakError(f"line {line}: size {text!r} is not a number", path) from None
        if not math.isfinite(size) or size < 0:
            raise KerasweakError(f"line {line}: size {text} must be a finite number >= 0", path)
        if image in sizes:
            raise KerasweakError(f"line {line}: image {image!r} is listed twice", path)
        sizes[image] = size
    if not sizes:
        raise KerasweakError("no size rows", path)
    return sizes


def sizes_for_sources(sizes, sources, path):
    """(N,) float32 sizes in the order of `sources`; an image without a size, or a size for no image, is an error."""
    missing = [source for source in sources if source not in sizes]
    if missing:
        raise KerasweakError(f"no size for image {missing[0]!r} ({len(missing)} of {len(sources)} images have none)", path)
    unknown = sorted(set(sizes) - set(sources))
    if unknown:
        raise KerasweakError(f"size given for unknown image {unknown[0]!r} ({len(unknown)} such rows)", path)
    return np.asarray([sizes[source] for source in sources], dtype=np.float32)
