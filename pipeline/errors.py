"""Errors a user sees.

`InputError` is raised for bad *input* (a file, a config, a manifest): it always names the
input and says what is wrong with it, and the CLI prints it without a traceback and exits 2.
Row-level problems are never raised past the row: they become `cutout_ok=false` rows.
"""


class InputError(Exception):
    """An input is unusable. `source` names it (a path, URI, column or config key)."""

    def __init__(self, source: str, problem: str):
        self.source = str(source)
        self.problem = problem
        super().__init__(f"{self.source}: {problem}")


class RowError(Exception):
    """A single task cannot be processed; recorded on its row as `cutout_error`, never fatal."""
