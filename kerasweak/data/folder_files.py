"""The files of a generic dataset folder, one by one: dataset.toml, images/, masks/ and the label CSVs.

Every reader here checks its file strictly: a problem that stops reading is a
KerasweakError naming the file (and line); a problem that does not (a file that
will not be read, a row given twice) is a warning, "PATH: problem", appended to
a `warnings` list, which `kerasweak check-data` and `kerasweak train` print.
The layout is described in docs/data.md and kerasweak/data/folder.py.
"""

import csv
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import KerasweakError
from .dataset import IGNORE_LABEL
from .proportions import check_proportion_row

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
LABEL_FILES = ("proportions.csv", "keypoints.csv", "sizes.csv", "split.csv")
FOLDER_ENTRIES = ("dataset.toml", "images", "masks", *LABEL_FILES)
NOT_TRAINING_DATA = ("label_times.csv",)  # written by `kerasweak annotate`: seconds spent labelling, not labels


def unread_entries(root):
    """Warnings for the entries of a generic folder that nothing reads (hidden files and .md/.txt notes are fine)."""
    return [f"{path}: not read (a generic folder reads dataset.toml, images/, masks/ and "
            "proportions.csv, keypoints.csv, sizes.csv, split.csv)"
            for path in sorted(Path(root).iterdir())
            if path.name not in (*FOLDER_ENTRIES, *NOT_TRAINING_DATA) and not path.name.startswith(".")
            and path.suffix.lower() not in (".md", ".txt")]
TOML_KEYS = ("classes", "colours", "ignore", "channels")
SPLIT_NAMES = {"train": "train", "val": "val", "validation": "val", "test": "test"}
SIXTEEN_BIT = "16-bit grey is scaled linearly from 0-65535 to 0-255 (value / 257, rounded), the same for every image"


@dataclass(frozen=True)
class FolderSpec:
    """What DIR/dataset.toml says: class names, their RGB colours, the ignored mask value or colour, image channels."""

    root: Path
    classes: tuple
    colours: np.ndarray
    colours_given: bool
    ignore_index: int | None
    ignore_colour: tuple | None
    channels: int

    @property
    def binary(self):
        """Two classes: one sigmoid output, and one proportion column (the second class's fraction), as the EM data."""
        return len(self.classes) == 2


def default_colours(num_classes):
    """Distinct RGB colours: matplotlib's tab10, then evenly spaced hues (never two classes alike)."""
    import colorsys

    import matplotlib

    colours = [tuple(int(round(255 * v)) for v in matplotlib.colormaps["tab10"](i)[:3]) for i in range(min(10, num_classes))]
    for i in range(num_classes - len(colours)):
        rgb = colorsys.hsv_to_rgb((i * 0.618034) % 1.0, 0.85, 0.95 - 0.35 * (i % 2))
        colour = tuple(int(round(255 * v)) for v in rgb)
        while colour in colours:
            colour = (colour[0], colour[1], (colour[2] + 7) % 256)
        colours.append(colour)
    return np.asarray(colours, dtype=np.uint8).reshape(-1, 3)


def _rgb(value):
    return (isinstance(value, list) and len(value) == 3
            and all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 255 for v in value))


def read_spec(root):
    """The FolderSpec of DIR/dataset.toml; any problem is one KerasweakError naming the file."""
    root = Path(root)
    path = root / "dataset.toml"
    try:
        table = tomllib.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise KerasweakError("no dataset.toml here: a generic dataset folder needs one naming its classes", root) from None
    except UnicodeDecodeError as err:
        raise KerasweakError(f"not UTF-8 text (byte {err.start})", path) from None
    except tomllib.TOMLDecodeError as err:
        raise KerasweakError(f"invalid TOML ({err})", path) from None
    unknown = [key for key in table if key not in TOML_KEYS]
    if unknown:
        raise KerasweakError(f"unknown key {unknown[0]!r}; known: {', '.join(TOML_KEYS)}", path)
    classes = table.get("classes")
    if not (isinstance(classes, list) and all(isinstance(c, str) and c.strip() for c in classes)):
        raise KerasweakError('classes: expected a list of class names, e.g. classes = ["background", "cell"]', path)
    if len(classes) < 2:
        raise KerasweakError(f"classes: name at least 2 classes, found {len(classes)}", path)
    if len(set(classes)) < len(classes):
        twice = next(c for c in classes if classes.count(c) > 1)
        raise KerasweakError(f"classes: {twice!r} is named twice", path)
    colours = table.get("colours")
    if colours is not None:
        if not (isinstance(colours, list) and all(_rgb(c) for c in colours)):
            raise KerasweakError("colours: expected one [R, G, B] (0-255 each) per class", path)
        if len(colours) != len(classes):
            raise KerasweakError(f"colours: {len(colours)} colours for {len(classes)} classes", path)
        if len({tuple(c) for c in colours}) < len(colours):
            raise KerasweakError("colours: two classes share a colour", path)
    ignore = table.get("ignore")
    ignore_index = ignore_colour = None
    if isinstance(ignore, int) and not isinstance(ignore, bool) and len(classes) <= ignore <= 255:
        ignore_index = ignore
    elif _rgb(ignore) and (colours is None or ignore not in colours):
        ignore_colour = tuple(ignore)
    elif ignore is not None:
        raise KerasweakError(f"ignore: expected a mask index {len(classes)}-255 or an [R, G, B] colour of no class, "
                             f"got {ignore!r}", path)
    channels = table.get("channels", 3)
    if channels not in (1, 3) or isinstance(channels, bool):
        raise KerasweakError(f"channels: expected 1 (grey) or 3 (RGB), got {channels!r}", path)
    palette = np.asarray(colours, dtype=np.uint8) if colours is not None else default_colours(len(classes))
    return FolderSpec(root, tuple(classes), palette, colours is not None, ignore_index, ignore_colour, channels)


def list_images(root, warnings):
    """{name: path} of the images in DIR/images/ in name order; other files there are warned about."""
    folder = Path(root) / "images"
    if not folder.is_dir():
        raise KerasweakError("no images/ folder", root)
    images, stems = {}, {}
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith("."):
            if path.stem in stems:
                raise KerasweakError(f"two images share the stem {path.stem!r} ({stems[path.stem]}, {path.name}); "
                                     "masks and CSV rows could not tell them apart", folder)
            images[path.name], stems[path.stem] = path, path.name
        else:
            kind = "a folder" if path.is_dir() else "not a png, jpg/jpeg or tif/tiff image"
            warnings.append(f"{path}: not read ({kind})")
    if not images:
        raise KerasweakError("empty folder: no png, jpg/jpeg or tif/tiff images", folder)
    return images


def mask_paths(root, images, warnings):
    """{image name: mask path} of DIR/masks/ (None if there is no masks/); a mask of no image is warned about."""
    folder = Path(root) / "masks"
    if not folder.is_dir():
        return None
    stems = {Path(name).stem: name for name in images}
    masks = {}
    for path in sorted(folder.iterdir()):
        name = stems.get(path.stem) if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES else None
        if name is None:
            warnings.append(f"{path}: not read (no image in images/ has the stem {path.stem!r})")
        elif name in masks:
            raise KerasweakError(f"two masks for image {name} ({masks[name].name}, {path.name})", folder)
        else:
            masks[name] = path
    return masks


def _open(path):
    """A decoded PIL image with its EXIF orientation applied; decoding problems are one-line errors."""
    try:
        with Image.open(path) as img:
            img.load()
            return ImageOps.exif_transpose(img) or img.copy()
    except FileNotFoundError:
        raise KerasweakError("file not found", path) from None
    except UnidentifiedImageError:
        raise KerasweakError("cannot decode image: not an image file, or an unknown format", path) from None
    except (OSError, SyntaxError, ValueError) as err:
        problem = "the file is truncated" if "truncated" in str(err) else str(err)
        raise KerasweakError(f"cannot decode image: {problem}", path) from None


def _stored_16_bit_colour(img):
    return any(isinstance(tile[3], tuple) and tile[3] and isinstance(tile[3][0], str) and tile[3][0].startswith("RGB")
               and ";16" in tile[3][0] for tile in getattr(img, "tile", []))


def decode_image(path, channels=3):
    """uint8 (H, W, channels) of an 8-bit grey/RGB(A)/palette image or a 16-bit grey one (SIXTEEN_BIT), EXIF orientation applied."""
    img = _open(path)
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        values = np.asarray(img).astype(np.float64)
        if values.min() < 0 or values.max() > 65535:
            raise KerasweakError(f"unsupported image mode {img.mode!r} (values outside 0-65535)", path)
        array = np.round(values / 257.0).astype(np.uint8)
        return array[..., None] if channels == 1 else np.repeat(array[..., None], 3, axis=-1)
    if img.mode not in ("L", "LA", "RGB", "RGBA", "P", "1") or _stored_16_bit_colour(img):
        raise KerasweakError(f"unsupported image mode {img.mode!r} (kerasweak reads 8-bit grey, RGB, RGBA or palette "
                             "images and 16-bit grey ones)", path)
    array = np.asarray(img.convert("RGB" if channels == 3 else "L"), dtype=np.uint8)
    return array if channels == 3 else array[..., None]


def decode_mask(path, spec, shape):
    """(H, W) uint8 class indices of a mask, IGNORE_LABEL where unlabelled.

    Index masks (grey, or palette PNGs when dataset.toml gives no colours) hold
    0..C-1, 255 or dataset.toml's ignore index; colour masks (RGB, or palette PNGs
    when dataset.toml gives colours) hold the class colours or its ignore colour.
    """
    from .images import colours_to_labels

    img = _open(path)
    colour = img.mode in ("RGB", "RGBA") or (img.mode == "P" and spec.colours_given)
    if colour:
        if not spec.colours_given:
            raise KerasweakError("a colour mask, but dataset.toml gives no colours (add colours = [[R, G, B], …], "
                                 "one per class, or save index masks)", path)
        ignore = [spec.ignore_colour] if spec.ignore_colour else []
        labels = colours_to_labels(np.asarray(img.convert("RGB")), spec.colours, path, ignore, IGNORE_LABEL)
    elif img.mode in ("L", "P", "1", "I;16", "I;16B", "I;16L", "I"):
        values = np.asarray(img).astype(np.int64)
        valid = (values < len(spec.classes)) | (values == IGNORE_LABEL) | (values == (spec.ignore_index or IGNORE_LABEL))
        if (~valid).any() or values.min() < 0:
            bad = values[~valid | (values < 0)]
            raise KerasweakError(f"mask value {int(bad[0])} ({bad.size} pixels) is not a class index 0-{len(spec.classes) - 1} "
                                 f"nor the ignore value", path)
        labels = np.where(values < len(spec.classes), values, IGNORE_LABEL).astype(np.uint8)
    else:
        raise KerasweakError(f"unsupported mask mode {img.mode!r} (index masks are grey or palette PNGs, colour masks RGB)", path)
    if labels.shape != tuple(shape):
        raise KerasweakError(f"mask size {labels.shape[1]}x{labels.shape[0]} differs from image size {shape[1]}x{shape[0]}",
                             path)
    return labels


# ----------------------------------------------------------------------------- label CSVs

def _looks_like_data(row, images):
    """A first row that names an image or holds a number after the first cell is data, not a header."""
    def number(cell):
        try:
            float(cell)
            return True
        except ValueError:
            return False

    return bool(row) and (resolve_image(row[0], images) is not None or any(number(cell) for cell in row[1:]))


def resolve_image(cell, images):
    """The image name (file name inside images/) a CSV cell names: the file name, its stem, or images/NAME; else None."""
    cell = cell.strip().replace("\\", "/")
    cell = cell[len("images/"):] if cell.startswith("images/") else cell
    if cell in images:
        return cell
    return next((name for name in images if Path(name).stem == cell), None)


def read_rows(path, columns, images, warnings, fixed_order=True):
    """[(line, image name, {column: text})] of a label CSV whose header names `columns` ("image" first, any order).

    A header-less file whose first row looks like data is read in the order of
    `columns` with a warning when `fixed_order`, and is an error otherwise. An
    unknown image is an error naming the line.
    """
    path = Path(path)
    try:
        rows = list(csv.reader(path.read_text(encoding="utf-8-sig").splitlines()))
    except UnicodeDecodeError as err:
        raise KerasweakError(f"not a UTF-8 text file ({err})", path) from None
    except csv.Error as err:
        raise KerasweakError(f"not a readable CSV file ({err})", path) from None
    numbered = [(line, [cell.strip() for cell in row]) for line, row in enumerate(rows, start=1) if any(c.strip() for c in row)]
    if not numbered:
        raise KerasweakError(f"empty file: expected a header '{','.join(columns)}' and one row per image", path)
    header = numbered[0][1]
    if {cell.lower() for cell in header} != {c.lower() for c in columns} or len(header) != len(columns):
        if _looks_like_data(header, images):
            if not fixed_order:
                raise KerasweakError(f"line 1 looks like data, not a header; the first line must be '{','.join(columns)}' "
                                     "(any column order)", path)
            warnings.append(f"{path}: line 1 looks like data, not a header; read as columns {','.join(columns)}")
            order, body = list(columns), numbered
        else:
            raise KerasweakError(f"line 1: header must name the columns {', '.join(columns)} (any order), got "
                                 f"{', '.join(header) or 'nothing'}", path)
    else:
        lower = [cell.lower() for cell in header]
        order, body = [columns[[c.lower() for c in columns].index(cell)] for cell in lower], numbered[1:]
    out = []
    for line, row in body:
        if len(row) != len(order):
            raise KerasweakError(f"line {line}: {len(row)} values, expected {len(order)} ({','.join(order)})", path)
        values = dict(zip(order, row))
        name = resolve_image(values["image"], images)
        if name is None:
            raise KerasweakError(f"line {line}: unknown image {values['image']!r} (not in images/)", path)
        out.append((line, name, values))
    return out


def first_rows(rows, path, warnings):
    """{image: (line, values)} keeping each image's first row; a repeated image is a warning (conflicting or not)."""
    kept = {}
    for line, name, values in rows:
        if name in kept:
            first_line, first = kept[name]
            same = "the same values" if first == values else "other values; the first is used"
            warnings.append(f"{path}: line {line}: image {name} is listed again (first at line {first_line}), with {same}")
        else:
            kept[name] = (line, values)
    return kept


def _number(text, line, path, what):
    try:
        value = float(text)
    except ValueError:
        raise KerasweakError(f"line {line}: {what} {text!r} is not a number", path) from None
    if not math.isfinite(value):
        raise KerasweakError(f"line {line}: {what} must be finite, got {text}", path)
    return value


def read_folder_proportions(path, spec, images, warnings):
    """{image: (C,) float proportions} of proportions.csv (header image,<classes of dataset.toml>, any order)."""
    rows = first_rows(read_rows(path, ("image", *spec.classes), images, warnings, fixed_order=False), path, warnings)
    out = {}
    for name, (line, values) in rows.items():
        props = [_number(values[c], line, path, "proportion") for c in spec.classes]
        check_proportion_row(props, line, path)
        out[name] = np.asarray(props, dtype=np.float32)
    return out


def read_folder_sizes(path, images, warnings):
    """{image: size} of sizes.csv (image,size; sizes finite and >= 0)."""
    out = {}
    for name, (line, values) in first_rows(read_rows(path, ("image", "size"), images, warnings), path, warnings).items():
        size = _number(values["size"], line, path, "size")
        if size < 0:
            raise KerasweakError(f"line {line}: size {values['size']} must be >= 0", path)
        out[name] = size
    return out


def read_folder_split(path, images, warnings):
    """{image: "train" | "val" | "test"} of split.csv; every image needs a row."""
    out = {}
    for name, (line, values) in first_rows(read_rows(path, ("image", "split"), images, warnings), path, warnings).items():
        part = SPLIT_NAMES.get(values["split"].lower())
        if part is None:
            raise KerasweakError(f"line {line}: split {values['split']!r} is not train, val or test", path)
        out[name] = part
    missing = [name for name in images if name not in out]
    if missing:
        raise KerasweakError(f"no split for image {missing[0]} ({len(missing)} of {len(images)} images have none)", path)
    return out


def read_folder_keypoints(path, spec, images, shapes, warnings):
    """{image: [(x, y, class index)]} of keypoints.csv (image,class,x,y in image pixels, after EXIF orientation).

    `shapes` gives each image's (height, width); a point outside it, or an unknown
    class, is an error naming the line; one point given two classes is a warning.
    """
    points, seen = {}, {}
    for line, name, values in read_rows(path, ("image", "class", "x", "y"), images, warnings):
        if values["class"] not in spec.classes:
            raise KerasweakError(f"line {line}: unknown class {values['class']!r}; known: {', '.join(spec.classes)}", path)
        x, y = (_number(values[k], line, path, k) for k in ("x", "y"))
        height, width = shapes(name)
        if not (0 <= x < width and 0 <= y < height):
            raise KerasweakError(f"line {line}: point ({x:g}, {y:g}) is outside the {width}x{height} image {name}", path)
        key = (name, int(x), int(y))
        if key in seen and seen[key][1] != values["class"]:
            warnings.append(f"{path}: line {line}: point ({int(x)}, {int(y)}) of {name} is {values['class']}, but "
                            f"{seen[key][1]} at line {seen[key][0]}")
        seen.setdefault(key, (line, values["class"]))
        points.setdefault(name, []).append((x, y, spec.classes.index(values["class"])))
    return points


def image_shape(path):
    """(height, width) of an image after its EXIF orientation, from its header alone."""
    try:
        with Image.open(path) as img:
            orientation = img.getexif().get(0x0112, 1)
            width, height = img.size
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError):
        return decode_image(path).shape[:2]
    return (width, height) if orientation in (5, 6, 7, 8) else (height, width)
