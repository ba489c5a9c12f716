"""The one exception type that the CLI turns into a one-line error."""


class KerasweakError(ValueError):
    """Bad input or configuration. The message names the file and the problem."""

    def __init__(self, problem, path=None):
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: {problem}" if path is not None else problem)


class Terminated(BaseException):
    """SIGTERM, raised in the main thread so that `finally` blocks (temporary files) run before the exit."""


_termination = {"requested": False}


def request_termination(signum=None, frame=None):
    """The SIGTERM handler: remember the request, then raise Terminated.

    Python drops an exception raised where it cannot propagate (a `__del__`, a
    C-extension callback such as h5py's), so the remembered request is checked
    again after each training batch (`check_termination`) and before the CLI exits.
    """
    _termination["requested"] = True
    raise Terminated()


def check_termination():
    """Raise Terminated if SIGTERM arrived, even if its first Terminated was dropped."""
    if _termination["requested"]:
        raise Terminated()
