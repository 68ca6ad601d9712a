"""Every action a workflow uses is pinned to a full commit SHA, with the release it
is in a comment: a tag can be moved to other code, a commit cannot.

    python -m tools.pinned_actions [WORKFLOW ...]   (default: .github/workflows/*.yml)

Prints one line per unpinned `uses:` (file, line, what to do) and exits 1 if
there is any. `make lint` runs it. Local actions (`./...`) and `docker://`
images are not GitHub releases and are left alone.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
USES = re.compile(r"^\s*(?:-\s+)?uses:\s*(?P<ref>[^\s#]+)\s*(?:#\s*(?P<comment>.*))?$")
PINNED = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_./-]+@[0-9a-f]{40}$")
RELEASE = re.compile(r"^v\d+\.\d+\.\d+$")


def problems(path: Path) -> Iterator[str]:
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        match = USES.match(line)
        if match is None:
            continue
        ref, comment = match["ref"].strip("'\""), (match["comment"] or "").strip()
        if ref.startswith(("./", "docker://")):
            continue
        where = f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}:{number}"
        if not PINNED.match(ref):
            yield f"{where}: {ref}: pin the full commit SHA of the release (`@<sha> # vX.Y.Z`)"
        elif not RELEASE.match(comment):
            yield f"{where}: {ref}: name the release the SHA is in (`# vX.Y.Z`)"


def main(argv: Sequence[str] | None = None) -> int:
    paths = [Path(p) for p in (argv or [])] or sorted((ROOT / ".github/workflows").glob("*.yml"))
    found = [line for path in paths for line in problems(path.resolve())]
    for line in found:
        print(line, file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
