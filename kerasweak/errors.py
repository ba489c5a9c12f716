"""The one exception type that the CLI turns into a one-line error."""


class KerasweakError(ValueError):
    """Bad input or configuration. The message names the file and the problem."""

    def __init__(self, problem, path=None):
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: {problem}" if path is not None else problem)
