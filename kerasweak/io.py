"""Atomic file output: write to a temporary name, then rename; a full disk as a clear error.

A crash therefore never leaves a truncated file where a good one is expected,
and the temporary folder a killed process leaves is removed by the next write
of the same file.
"""

import csv
import errno
import glob
import json
import os
import re
import shutil
import socket
import tempfile
from contextlib import contextmanager
from pathlib import Path

NO_SPACE = "No space left on device"


@contextmanager
def atomic_path(path):
    """Yield a temporary sibling path; rename it onto `path` only on success.

    Works for files and for directories (e.g. a SavedModel). The temporary
    folder is named after this process (.NAME.PID@HOST.XXXXXXXX), so one left by
    a killed process is known as stale and removed. A full disk while writing, however the
    writer reports it (TensorFlow's ResourceExhaustedError, h5py's OSError), is an OSError ENOSPC naming `path`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    prefix = f".{path.name}.{os.getpid()}@{socket.gethostname()}."
    with naming_full_disk(path, always=True):
        tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=path.parent)) / path.name
        try:
            yield tmp
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            os.replace(tmp, path)
        finally:
            shutil.rmtree(tmp.parent, ignore_errors=True)


def remove_stale_temporaries(path):
    """Remove the temporary folders of `path` that killed processes left: of this host and a process now gone, or unnamed (older kerasweak)."""
    pattern = re.compile(rf"^\.{re.escape(path.name)}\.(?:(\d+)@(.+)\.)?[a-z0-9_]{{8}}$")
    for candidate in path.parent.glob(f".{glob.escape(path.name)}.*"):
        match = pattern.match(candidate.name)
        if match and candidate.is_dir() and (match[1] is None or (match[2] == socket.gethostname() and not alive(int(match[1])))):
            shutil.rmtree(candidate, ignore_errors=True)


def alive(pid):
    """Whether process `pid` of this host exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, under another user
    return True


def is_disk_full(err):
    """Whether `err`, or an error it arose from, is a full disk (ENOSPC, or a library's message saying so)."""
    return any(getattr(e, "errno", None) == errno.ENOSPC or NO_SPACE in str(e) for e in error_chain(err))


def disk_full_file(err):
    """The file a full disk stopped writing ("" if unnamed); None when `err` is not a full disk."""
    if not is_disk_full(err):
        return None
    return next((str(e.filename) for e in error_chain(err) if getattr(e, "filename", None)), "")


def error_chain(err):
    """`err` and the errors it arose from (its cause, or the error being handled when it was raised)."""
    seen = []
    while err is not None and err not in seen:
        seen.append(err)
        err = err.__cause__ or err.__context__
    return seen


@contextmanager
def naming_full_disk(path, always=False):
    """Make a full disk, however the writer reports it, an OSError ENOSPC naming `path`.

    By default only an error that names no file (e.g. a log row appended) is
    renamed; `always` names `path` instead of a temporary file inside it.
    """
    try:
        yield
    except Exception as err:
        written = disk_full_file(err)
        if written == "" or (always and written is not None):
            raise OSError(errno.ENOSPC, NO_SPACE, str(path)) from None
        raise


def check_free_space(path, nbytes):
    """Raise OSError ENOSPC naming `path` unless its folder has room for `nbytes` more.

    For writers that crash rather than raise on a full disk: Keras's
    save_weights (h5py) ends the process with a segmentation fault.
    """
    if shutil.disk_usage(Path(path).parent).free < nbytes:
        raise OSError(errno.ENOSPC, NO_SPACE, str(path))


def write_text(path, text):
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text)


def write_json(path, obj):
    write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def csv_column(path, column):
    """The float values of one column of a CSV log, empty cells skipped; [] if the file does not exist yet."""
    if not Path(path).exists():
        return []
    with open(path, newline="") as handle:
        return [float(row[column]) for row in csv.DictReader(handle) if row.get(column)]


def csv_header(path):
    """The column names of a CSV log; [] if it does not exist or is empty."""
    if not Path(path).exists():
        return []
    with open(path, newline="") as handle:
        return next(csv.reader(handle), [])


def check_writable(directory):
    """Fail early, with a clear message, if `directory` cannot be written."""
    from .errors import KerasweakError

    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory):
            pass
    except OSError as err:
        raise KerasweakError(f"output folder is not writable ({err.strerror})", directory) from None
