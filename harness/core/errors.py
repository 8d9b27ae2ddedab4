"""Errors the user can fix: one line that says what went wrong and how to fix it."""


class HarnessError(Exception):
    """A problem with input or environment; ``str()`` is a one-line message naming the fix."""

    def __init__(self, problem: str, fix: str | None = None) -> None:
        self.problem = problem
        self.fix = fix
        super().__init__(f"{problem} — fix: {fix}" if fix else problem)
