"""Broken stack files, generated: whatever a stack file holds, reading and
validating it ends in the settings or in one line per problem naming the stack
file, never in a traceback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infra.settings import SettingsError, load
from tools import stackfiles

ROOT = Path(__file__).resolve().parent.parent
STACK = "fuzz-dev"
PREFIX = f"stacks/Pulumi.{STACK}.yaml: "
SHIPPED = {path.name: path.read_text() for path in sorted((ROOT / "stacks").glob("Pulumi.*.yaml"))}
# Characters that carry meaning in YAML, and so break a file where they land.
YAML_MARKS = [*":-[]{},#&*!|>'\"%@`?\t\n ", "\x00", "\ufeff", "\u2028", "é"]
# How many files each test generates: the corpus is this times the tests below.
EXAMPLES = 70
FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@pytest.fixture
def stacks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "stacks"
    folder.mkdir()
    monkeypatch.setattr(stackfiles, "stacks_dir", lambda: folder)
    return folder


def _read(stacks: Path, text: str) -> str:
    """Write `text` as the stack file, read and validate it as `make plan` does,
    and return the error, or "" when the file is valid."""
    (stacks / f"Pulumi.{STACK}.yaml").write_text(text, encoding="utf-8")
    try:
        load(STACK, stackfiles.as_engine_strings(stackfiles.stack_values(STACK)))
    except SettingsError as error:
        return str(error)
    return ""


def _assert_lines(error: str) -> None:
    lines = error.splitlines()
    assert lines, "an error with no line"
    for line in lines:
        assert line.startswith(PREFIX), line
        assert "Traceback" not in line, line


@st.composite
def mutated(draw: st.DrawFn) -> str:
    """A shipped stack file with a few characters deleted, inserted or replaced."""
    text = SHIPPED[draw(st.sampled_from(sorted(SHIPPED)))]
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(text)))
        mark = draw(st.sampled_from(YAML_MARKS))
        edit = draw(st.sampled_from(["delete", "insert", "replace"]))
        if edit == "delete":
            text = text[:at] + text[at + 1 :]
        elif edit == "insert":
            text = text[:at] + mark + text[at:]
        else:
            text = text[:at] + mark + text[at + 1 :]
    return text


SCALARS = (
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12) | st.dates()
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=12) | st.integers(), inner, max_size=3)
    ),
    max_leaves=8,
)


@st.composite
def shapes(draw: st.DrawFn) -> str:
    """Valid YAML of the wrong shape: any top level, any `config`, any value
    under a real key."""
    base = yaml.safe_load(SHIPPED[draw(st.sampled_from(sorted(SHIPPED)))])
    where = draw(st.sampled_from(["top", "config", "key"]))
    if where == "top":
        data: Any = draw(VALUES)
    elif where == "config":
        data = {**base, "config": draw(VALUES)}
    else:
        key = draw(st.sampled_from(sorted(base["config"])))
        data = {**base, "config": {**base["config"], key: draw(VALUES)}}
    return yaml.safe_dump(data, allow_unicode=True)


def _fuzz(stacks: Path, files: st.SearchStrategy[str]) -> list[bool]:
    """Read every generated file; which of them were refused."""
    refused: list[bool] = []

    @FUZZ
    @given(text=files)
    def read(text: str) -> None:
        error = _read(stacks, text)
        if error:
            _assert_lines(error)
        refused.append(bool(error))

    read()
    return refused


def test_any_text_is_settings_or_lines(stacks: Path) -> None:
    refused = _fuzz(stacks, st.text(max_size=200))
    assert len(refused) >= EXAMPLES
    assert all(refused)  # No text of a few characters is a whole stack.


def test_a_damaged_stack_file_is_settings_or_lines(stacks: Path) -> None:
    refused = _fuzz(stacks, mutated())
    assert len(refused) >= EXAMPLES
    # Most damage breaks the file; some (a space in a comment) does not.
    assert sum(refused) >= len(refused) // 2


def test_yaml_of_the_wrong_shape_is_lines(stacks: Path) -> None:
    refused = _fuzz(stacks, shapes())
    assert len(refused) >= EXAMPLES
    assert sum(refused) >= len(refused) // 2


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "config: is required but missing"),
        ("config: [a, b]\n", "config: expected a mapping of settings, got list"),
        ("config:\n  1: x\n", "1: a setting's name is text, like mlops:cloud, not int"),
        # A record separator would split the line; it is shown as its escape.
        ('"a\\x1eb": 1\nconfig: {}\n', "a\\x1eb: unknown top-level key"),
        (
            "config:\n  mlops:network: {since: 2026-01-01}\n",
            "mlops:network: holds a value settings cannot take",
        ),
        ("config: " + "[" * 1000 + "\n", "(file): not valid YAML: nested too deeply"),
    ],
    ids=[
        "empty",
        "config a list",
        "a number as key",
        "a control character",
        "a date in an object",
        "nested too deeply",
    ],
)
def test_empty_and_misshapen_files_name_the_problem(stacks: Path, text: str, expected: str) -> None:
    error = _read(stacks, text)
    assert error.splitlines()[0].startswith(PREFIX + expected), error


def test_the_mutations_start_from_valid_files() -> None:
    for name in SHIPPED:
        stack = stackfiles.stack_name(name)
        assert (
            load(stack, stackfiles.as_engine_strings(stackfiles.stack_values(stack))).stack == stack
        )
