"""`kerasweak predict`: segment whole images of any size with an exported model, tile by tile, in bounded memory.

An export trained on whole images scaled into patches (a folder without
masks) records its working scale; each image is then predicted at that scale
and its class maps resized back to the native size (kerasweak.scaling), not tiled.

Outputs (--format): `colour`, an RGB PNG in the model's palette plus an overlay
and a legend PNG beside it; `index`, a greyscale PNG of class indices; and
`probabilities`, a float16 .npy of the (H, W, C) class maps. Every output is
written one strip of tiles at a time (kerasweak.band_files), so memory holds the
decoded image and one strip of float maps, labels and colours, never a
whole-image output.
"""

import glob
import warnings
from pathlib import Path

import numpy as np

from .band_files import NpyBands, PngBands
from .errors import KerasweakError
from .evaluation import _blend_window, in_reflect_context
from .figures import colourise, legend
from .io import atomic_path, check_writable
from .scaling import scaled_strips
from .schema import multiple_of_8

FORMATS = {"colour": ".png", "index": ".png", "probabilities": ".npy"}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif", ".webp")
# Pillow refuses images above 2 × MAX_IMAGE_PIXELS as decompression bombs. kerasweak sets the limit deliberately to
# one gigapixel (e.g. 40000 × 25000; 3 GB decoded as RGB), checks it before decoding, and names it in the error.
MAX_PIXELS = 1_000_000_000


def check_tiling(tile, overlap):
    """--tile a multiple of 16 and at least 32; 0 <= --overlap < tile / 2 (each pixel blends at most 2 tiles a side)."""
    if tile % 16 or tile < 32:
        raise KerasweakError(f"{tile} must be a multiple of 16 and at least 32", "--tile")
    if not 0 <= overlap < tile / 2:
        raise KerasweakError(f"{overlap} must be at least 0 and below half the tile ({tile // 2})", "--overlap")


def image_paths(specs):
    """(paths, many): the images `specs` name (files, folders' images sorted, glob patterns), and whether they are a set.

    A set (several specs, a folder or a glob) writes into an --out folder, even when it holds one image.
    """
    specs = [str(spec) for spec in specs]
    paths, many = [], len(specs) > 1
    for spec in specs:
        if Path(spec).is_dir():
            found = sorted(p for p in Path(spec).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        elif Path(spec).exists() or not glob.has_magic(spec):
            found = [Path(spec)]
        else:
            found = sorted(Path(p) for p in glob.glob(spec) if Path(p).suffix.lower() in IMAGE_SUFFIXES)
        if not found:
            raise KerasweakError("no images here (png, jpg, tif, bmp, gif, webp)", spec)
        paths += found
        many = many or Path(spec).is_dir() or not Path(spec).exists()
    return paths, many


def read_checked(path, channels):
    """The image as uint8 (H, W, channels), upright by its EXIF orientation (data.read_image); a one-line error above MAX_PIXELS.

    The size is read from the header, before anything is decoded.
    """
    from PIL import Image, UnidentifiedImageError

    from .data import read_image

    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                width, height = img.size
    except Image.DecompressionBombError:
        width = height = None
    except (OSError, UnidentifiedImageError):
        return read_image(path, channels)  # its own one-line error
    if width is None or width * height > MAX_PIXELS:
        size = f"{width}x{height} " if width else ""
        raise KerasweakError(f"image {size}is above kerasweak's limit of {MAX_PIXELS} pixels; cut it into parts", path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        return read_image(path, channels)


def _source_index(size, padded, reflect):
    """The row (or column) of the image each padded position reads: numpy's "reflect" padding, or "edge"."""
    index = np.arange(padded)
    return np.where(index < size, index, 2 * (size - 1) - index) if reflect else np.minimum(index, size - 1)


def tiled_strips(predict_fn, image, num_outputs, tile=448, overlap=64):
    """Yield (first row, class maps of a strip of rows) covering the image top to bottom, as predict_tiled blends them.

    Each strip is final once no later tile row reaches it, so only a tile-high
    band of float maps is ever held; the values equal predict_tiled's.
    """
    height, width = image.shape[:2]
    stride = tile - overlap
    rows = max(1, int(np.ceil((height - overlap) / stride)))
    cols = max(1, int(np.ceil((width - overlap) / stride)))
    padded_h, padded_w = (rows - 1) * stride + tile, (cols - 1) * stride + tile
    reflect = min(height, width) > max(padded_h - height, padded_w - width)  # predict_tiled's choice
    row_of, col_of = _source_index(height, padded_h, reflect), _source_index(width, padded_w, reflect)
    total = np.zeros((tile, padded_w, num_outputs), np.float32)
    weight = np.zeros((tile, padded_w, 1), np.float32)
    window = _blend_window(tile)
    for r in range(rows):
        band = image[row_of[r * stride:r * stride + tile]][:, col_of]
        for c in range(cols):
            x = c * stride
            total[:, x:x + tile] += np.asarray(predict_fn(band[None, :, x:x + tile].astype(np.float32)))[0] * window
            weight[:, x:x + tile] += window
        done = tile if r == rows - 1 else stride
        start = r * stride
        if start < height:
            yield start, (total[:done] / np.maximum(weight[:done], 1e-6))[:min(done, height - start), :width]
        total = np.concatenate([total[done:], np.zeros_like(total[:done])])
        weight = np.concatenate([weight[done:], np.zeros_like(weight[:done])])


def output_paths(images, many, out, fmt):
    """{image: output file}: `out` itself for one image (its suffix must be the format's), else OUT/<stem><suffix>."""
    out, suffix = Path(out), FORMATS[fmt]
    if not many:
        if out.is_dir():
            raise KerasweakError(f"is a folder; --out takes the name of the {suffix[1:].upper()} to write", out)
        if out.suffix.lower() != suffix:
            raise KerasweakError(f"--format {fmt} writes {suffix[1:].upper()}; name the output {out.stem}{suffix}", out)
        check_writable(out.parent)
        return {images[0]: out}
    if out.suffix.lower() in (".png", ".npy", ".jpg", ".jpeg", ".tif", ".tiff") and not out.is_dir():
        raise KerasweakError(f"{len(images)} images: --out takes a folder for their outputs", out)
    check_writable(out)
    stems = [path.stem for path in images]
    duplicate = next((path for path, stem in zip(images, stems) if stems.count(stem) > 1), None)
    if duplicate is not None:
        raise KerasweakError(f"two images are named {duplicate.stem}; their outputs would overwrite each other", duplicate)
    return {path: out / f"{path.stem}{suffix}" for path in images}


def _write_png(path, picture):
    from PIL import Image

    with atomic_path(path) as tmp:
        Image.fromarray(picture).save(tmp, format="PNG")


def predict_one(predict_fn, metadata, image_path, out, fmt="colour", tile=448, overlap=64):
    """Segment one image into `out` in format `fmt` (see the module docstring); return the files written."""
    from .metrics import labels_from_probabilities

    image = read_checked(image_path, metadata["channels"])
    num_outputs = metadata["num_outputs"]
    scale = metadata.get("working_scale")
    strips = scaled_strips(predict_fn, image, scale) if scale else tiled_strips(predict_fn, image, num_outputs, tile, overlap)
    height, width = image.shape[:2]
    if fmt == "probabilities":
        with atomic_path(out) as tmp, open(tmp, "wb") as handle:
            stored = NpyBands(handle, (height, width, num_outputs), np.float16)
            for _, maps in strips:
                stored.write(maps)
            stored.close()
        return [out]
    bias = metadata.get("class_bias")
    if fmt == "index":
        with atomic_path(out) as tmp, open(tmp, "wb") as handle:
            picture = PngBands(handle, height, width, 1)
            for _, maps in strips:
                picture.write(labels_from_probabilities(maps, bias))
            picture.close()
        return [out]
    palette = np.asarray(metadata["palette"], np.uint8)
    overlay = out.with_name(out.stem + "_overlay.png")
    key = out.with_name(out.stem + "_legend.png")
    with atomic_path(out) as mask_tmp, atomic_path(overlay) as overlay_tmp, \
            open(mask_tmp, "wb") as mask_file, open(overlay_tmp, "wb") as overlay_file:
        mask_png, overlay_png = PngBands(mask_file, height, width, 3), PngBands(overlay_file, height, width, 3)
        for start, maps in strips:
            mask = colourise(labels_from_probabilities(maps, bias), palette)
            band = image[start:start + len(maps)]
            base = band if band.shape[-1] == 3 else np.repeat(band, 3, axis=-1)
            mask_png.write(mask)
            overlay_png.write(((base.astype(np.uint16) + mask) // 2).astype(np.uint8))  # 0.5 · image + 0.5 · mask
        mask_png.close()
        overlay_png.close()
    _write_png(key, legend(metadata["class_names"], palette))
    return [out, overlay, key]


def predict_files(model_path, images, out, fmt="colour", tile=448, overlap=64, echo=None, reflect_context=0):
    """Segment every image `images` names (files, folders, globs) with the exported model; echo a line per image.

    reflect_context = N predicts each tile (or scaled image) padded by N pixels
    of its mirror image at every edge and crops the maps back, so what a
    zero-padded network puts along its input's border stays outside the image
    (evaluation.in_reflect_context; docs/protocol.md, "Reflected context").
    """
    from .inference import load_export

    check_tiling(tile, overlap)
    if fmt not in FORMATS:
        raise KerasweakError(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}", "--format")
    problem = multiple_of_8(reflect_context)
    if problem:
        raise KerasweakError(problem, "--reflect-context")
    outputs = output_paths(*image_paths(images), out, fmt)
    predict_fn, metadata = load_export(model_path)
    predict_fn = in_reflect_context(predict_fn, reflect_context)
    written = []
    for i, (path, target) in enumerate(outputs.items(), start=1):
        written += predict_one(predict_fn, metadata, path, target, fmt, tile, overlap)
        if echo:
            echo(f"[{i}/{len(outputs)}] {path} -> {target}")
    return written
