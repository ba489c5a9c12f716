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
    again after each training batch (`check_termination`) and before the CLI exits;
    the CLI's drop_terminated_quietly keeps the dropped one from printing a traceback.
    """
    _termination["requested"] = True
    raise Terminated()


def drop_terminated_quietly(report):
    """A sys.unraisablehook: a Terminated that Python dropped (raised in a `__del__` or a garbage-collector callback,
    such as JAX's) is not printed, since check_termination raises it again; anything else goes to `report`."""

    def hook(unraisable):
        if not isinstance(unraisable.exc_value, Terminated):
            report(unraisable)

    return hook


def check_termination():
    """Raise Terminated if SIGTERM arrived, even if its first Terminated was dropped."""
    if _termination["requested"]:
        raise Terminated()
