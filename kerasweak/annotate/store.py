"""The labels of a generic dataset folder as the annotation page edits them, each change saved at once.

The store reads DIR/dataset.toml and DIR/images/, and keeps in memory what
DIR/keypoints.csv, proportions.csv, sizes.csv and label_times.csv hold. Every
change rewrites the one file it touches through kerasweak.io.atomic_path (a
temporary file, then a rename), so a killed server or a closed tab loses at
most the change being made, and `kerasweak check-data` / `kerasweak train` can
read the files at any moment. Rows naming images that are not in images/ are
kept as they were. The formats are those of docs/data.md:

    keypoints.csv     image,class,x,y          (x, y in image pixels)
    proportions.csv   image,<class>,...        (dataset.toml's classes, summing to 1)
    sizes.csv         image,size               (two classes only)
    label_times.csv   image,kind,seconds       (time spent labelling, per image and label kind)
"""

import csv
import fcntl
import io
import math
import os
import socket
import threading
from pathlib import Path

from ..data.folder_files import image_shape, list_images, read_spec
from ..errors import KerasweakError
from ..io import atomic_path

KINDS = ("keypoints", "proportions", "size")
FILES = {"keypoints": "keypoints.csv", "proportions": "proportions.csv", "size": "sizes.csv", "times": "label_times.csv"}
LOCK_NAME = ".annotate.lock"
MAX_POINTS = 10_000


class BadRequest(ValueError):
    """A request the store refuses (nothing is changed); `status` is the HTTP code it gets."""

    def __init__(self, reason, status=400):
        super().__init__(reason)
        self.status = status


def _number(text):
    text = f"{float(text):.4f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _read_csv(path):
    """(header, rows) of a CSV, [] and [] if it does not exist; any problem is a KerasweakError naming it."""
    if not path.is_file():
        return [], []
    try:
        rows = [[c.strip() for c in row] for row in csv.reader(path.read_text(encoding="utf-8-sig").splitlines())
                if any(c.strip() for c in row)]
    except (UnicodeDecodeError, csv.Error) as err:
        raise KerasweakError(f"cannot read ({err}); fix or move the file, then start again", path) from None
    return (rows[0], rows[1:]) if rows else ([], [])


class FolderLock:
    """An exclusive lock on DIR/.annotate.lock, so that two servers never write one folder; the kernel frees it when the process dies."""

    def __init__(self, root):
        self.path = Path(root) / LOCK_NAME
        self.handle = None

    def acquire(self):
        handle = open(self.path, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise KerasweakError(f"another `kerasweak annotate` ({holder}) is serving this folder; stop it first",
                                 self.path.parent) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
        handle.flush()
        self.handle = handle
        return self

    def release(self):
        if self.handle is not None:
            self.path.unlink(missing_ok=True)
            self.handle.close()
            self.handle = None


class LabelStore:
    """A folder's images and labels: `state()` for the page, `save(image, kind, value, seconds)` for each change."""

    def __init__(self, root):
        self.root = Path(root)
        self.spec = read_spec(self.root)
        self.images = list_images(self.root, [])
        self.shapes = {name: image_shape(path) for name, path in self.images.items()}
        self.classes = list(self.spec.classes)
        self.binary = self.spec.binary
        self._lock = threading.Lock()
        self.points, self.proportions, self.sizes, self.times = {}, {}, {}, {}
        self.other = {kind: [] for kind in FILES}  # rows of images not in images/, written back unchanged
        self._load()

    # ------------------------------------------------------------------ reading
    def _name(self, cell):
        cell = cell.replace("\\", "/").removeprefix("images/")
        if cell in self.images:
            return cell
        return next((name for name in self.images if Path(name).stem == cell), None)

    def _rows(self, kind, columns):
        path = self.root / FILES[kind]
        header, rows = _read_csv(path)
        if not header:
            return []
        lower = [c.lower() for c in header]
        if sorted(lower) != sorted(c.lower() for c in columns):
            raise KerasweakError(f"line 1: expected the columns {','.join(columns)}, got {','.join(header)}; "
                                 "fix the file (kerasweak check-data tells more), then start again", path)
        out = []
        for line, row in enumerate(rows, start=2):
            if len(row) != len(header):
                raise KerasweakError(f"line {line}: {len(row)} values, expected {len(header)}", path)
            values = {columns[[c.lower() for c in columns].index(h)]: v for h, v in zip(lower, row)}
            name = self._name(values["image"])
            if name is None:
                self.other[kind].append(values)
                continue
            out.append((name, values))
        return out

    def _load(self):
        try:
            for name, v in self._rows("keypoints", ("image", "class", "x", "y")):
                self.points.setdefault(name, []).append([float(v["x"]), float(v["y"]), v["class"]])
            for name, v in self._rows("proportions", ("image", *self.classes)):
                self.proportions.setdefault(name, [float(v[c]) for c in self.classes])
            for name, v in self._rows("size", ("image", "size")):
                self.sizes.setdefault(name, float(v["size"]))
            for name, v in self._rows("times", ("image", "kind", "seconds")):
                self.times.setdefault(name, {})[v["kind"]] = float(v["seconds"])
        except ValueError as err:
            if isinstance(err, KerasweakError):
                raise
            raise KerasweakError(f"a label file holds a value that is not a number ({err}); "
                                 "run `kerasweak check-data` on the folder", self.root) from None

    # ------------------------------------------------------------------ the page's view
    def state(self):
        with self._lock:
            return {
                "classes": self.classes, "colours": [[int(v) for v in c] for c in self.spec.colours],
                "binary": self.binary,
                "images": [{"name": n, "width": self.shapes[n][1], "height": self.shapes[n][0]} for n in self.images],
                "keypoints": {n: [list(p) for p in pts] for n, pts in self.points.items()},
                "proportions": dict(self.proportions), "sizes": dict(self.sizes),
                "times": {n: dict(t) for n, t in self.times.items()},
            }

    # ------------------------------------------------------------------ changes
    def save(self, image, kind, value, seconds=0.0):
        """Replace `image`'s labels of `kind` by `value` (None: remove them), add `seconds` to its time; write the files."""
        if image not in self.images:
            raise BadRequest(f"unknown image {str(image)[:80]!r} (not in images/)", 404)
        if kind not in KINDS:
            raise BadRequest(f"unknown label kind {str(kind)[:40]!r}; known: {', '.join(KINDS)}")
        if kind == "size" and not self.binary:
            raise BadRequest(f"sizes need two classes; dataset.toml names {len(self.classes)}")
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 <= seconds <= 3600:
            raise BadRequest("seconds must be a number from 0 to 3600")
        checked = None if value is None else getattr(self, f"_check_{kind}")(image, value)
        with self._lock:
            table = {"keypoints": self.points, "proportions": self.proportions, "size": self.sizes}[kind]
            if checked is None:
                table.pop(image, None)
            else:
                table[image] = checked
            self._write(kind)
            if seconds:
                times = self.times.setdefault(image, {})
                times[kind] = times.get(kind, 0.0) + float(seconds)
                self._write("times")

    def _check_keypoints(self, image, value):
        if not isinstance(value, list) or len(value) > MAX_POINTS:
            raise BadRequest(f"keypoints must be a list of at most {MAX_POINTS} [x, y, class] points")
        height, width = self.shapes[image]
        out = []
        for point in value:
            if not (isinstance(point, list) and len(point) == 3):
                raise BadRequest("each keypoint must be [x, y, class]")
            x, y, name = point
            if name not in self.classes:
                raise BadRequest(f"unknown class {str(name)[:40]!r}; known: {', '.join(self.classes)}")
            if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in (x, y)):
                raise BadRequest("keypoint x and y must be finite numbers")
            if not (0 <= x < width and 0 <= y < height):
                raise BadRequest(f"point ({x:g}, {y:g}) is outside the {width}x{height} image")
            out.append([round(float(x), 1), round(float(y), 1), name])
        return out

    def _check_proportions(self, image, value):
        if not (isinstance(value, list) and len(value) == len(self.classes)):
            raise BadRequest(f"proportions must be a list of {len(self.classes)} numbers, one per class")
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0 for v in value):
            raise BadRequest("proportions must be finite numbers >= 0")
        if abs(sum(value) - 1.0) > 1e-3:
            raise BadRequest(f"proportions sum to {sum(value):.4f}, not 1")
        return [round(float(v) / sum(value), 4) for v in value]

    def _check_size(self, image, value):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise BadRequest("size must be a finite number >= 0")
        height, width = self.shapes[image]
        if value > max(height, width):
            raise BadRequest(f"size {value:g} is larger than the {width}x{height} image")
        return round(float(value), 1)

    def _write(self, kind):
        """Rewrite one label file atomically: a header, rows in image order, rows of images not in images/ last."""
        path = self.root / FILES[kind]
        buffer = io.StringIO()
        out = csv.writer(buffer, lineterminator="\n")
        if kind == "keypoints":
            columns = ["image", "class", "x", "y"]
            rows = [[n, c, _number(x), _number(y)] for n in self.images for x, y, c in self.points.get(n, [])]
        elif kind == "proportions":
            columns = ["image", *self.classes]
            rows = [[n, *(_number(v) for v in self.proportions[n])] for n in self.images if n in self.proportions]
        elif kind == "size":
            columns = ["image", "size"]
            rows = [[n, _number(self.sizes[n])] for n in self.images if n in self.sizes]
        else:
            columns = ["image", "kind", "seconds"]
            rows = [[n, k, _number(s)] for n in self.images for k, s in sorted(self.times.get(n, {}).items())]
        rows += [[values[c] for c in columns] for values in self.other[kind]]
        out.writerow(columns)
        out.writerows(rows)
        with atomic_path(path) as tmp:
            Path(tmp).write_text(buffer.getvalue(), encoding="utf-8")
