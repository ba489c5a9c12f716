"""Run the `kerasweak` command and SIGKILL it just before its N-th file operation in OUT (tests/test_kill_anywhere.py).

    python tests/kill_driver.py OUT WHEN COUNT_FILE kerasweak-arguments...

File operations are the Python-level writes under OUT: opening a file to write,
h5py creating or closing a file (a close not reached leaves it torn), renames,
links, removals and new folders. WHEN is N (kill before the N-th operation),
N/enospc (make the N-th write, or the first after it, fail as on a full disk:
OSError ENOSPC), or a name (kill before the first operation on a path containing
it). N = 0 kills nowhere and writes the number of operations the run made to
COUNT_FILE, so a test can spread kill points over them.
"""

import atexit
import builtins
import errno
import io
import os
import shutil
import signal
import sys
from pathlib import Path


def main():
    out, when, count_file, *args = sys.argv[1:]
    out, count = os.path.abspath(out), [0]
    number, _, fault = when.partition("/")
    kill_at, name = (int(number), None) if number.isdigit() else (-1, when)

    def event(*paths, write=False):
        paths = [os.path.abspath(os.fspath(p)) for p in paths if isinstance(p, (str, os.PathLike))]
        if not any((p + os.sep).startswith(out + os.sep) for p in paths):
            return
        count[0] += 1
        if fault == "enospc":
            if count[0] >= kill_at and write:
                raise OSError(errno.ENOSPC, "No space left on device", paths[0])
        elif count[0] == kill_at or (name and any(name in p for p in paths)):
            os.kill(os.getpid(), signal.SIGKILL)

    def wrap(function, paths=1, when=lambda *a, **k: True, write=False):
        def wrapped(*a, **k):
            if when(*a, **k):
                event(*a[:paths], write=write)
            return function(*a, **k)
        return wrapped

    writing = lambda file, mode="r", *a, **k: isinstance(mode, str) and any(c in mode for c in "wax+")  # noqa: E731
    builtins.open = io.open = wrap(io.open, when=writing, write=True)
    for function, paths in (("replace", 2), ("rename", 2), ("link", 2), ("unlink", 1), ("remove", 1), ("rmdir", 1),
                            ("mkdir", 1)):
        setattr(os, function, wrap(getattr(os, function), paths, write=function == "mkdir"))
    shutil.rmtree = wrap(shutil.rmtree)

    import h5py

    class CountedFile(h5py.File):
        def __init__(self, name, mode="r", *a, **k):
            self.counted = mode != "r" and isinstance(name, (str, os.PathLike))
            if self.counted:
                event(name, write=True)
            super().__init__(name, mode, *a, **k)

        def close(self):
            if self.counted and self.id.valid:
                event(self.filename, write=True)
            super().close()

    h5py.File = CountedFile
    if kill_at == 0:
        atexit.register(lambda: Path(count_file).write_text(str(count[0])))
    sys.argv = ["kerasweak", *args]
    from kerasweak.cli.main import main as kerasweak_main

    kerasweak_main()


if __name__ == "__main__":
    main()
