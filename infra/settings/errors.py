"""The one error a bad stack file gets: a line per problem, naming the stack
file, the key path and what is wrong."""

from __future__ import annotations

from collections.abc import Sequence

PROJECT = "mlops"
NAMESPACE = f"{PROJECT}:"
STACKS_DIR = "stacks"


class SettingsError(Exception):
    """A stack file that cannot be planned. `str()` is one line per problem, each
    naming the stack file, the key path and what is wrong."""

    def __init__(self, stack_file: str, key: str, problem: str) -> None:
        self.stack_file = stack_file
        self.key = key
        self.problem = problem
        self.lines = [f"{stack_file}: {_one_line(key)}: {_one_line(problem)}"]
        super().__init__(self.lines[0])

    @classmethod
    def of(cls, problems: Sequence[SettingsError]) -> SettingsError:
        """One error reporting every problem, the first one's key and problem first."""
        first = problems[0]
        error = cls(first.stack_file, first.key, first.problem)
        error.lines = [line for p in problems for line in p.lines]
        error.args = ("\n".join(error.lines),)
        return error


def _one_line(text: str) -> str:
    """`text` with what would break or hide a line (a newline, a control
    character, a Unicode line separator) written as its escape."""
    return "".join(
        c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text
    )


def stack_file(stack: str) -> str:
    return f"{STACKS_DIR}/Pulumi.{stack}.yaml"
