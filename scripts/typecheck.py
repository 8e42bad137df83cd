"""The type checker's ratchet: mypy over the product code, never worse than the baseline.

The product predates its type checker, so mypy still reports errors (mostly Reflex's `Var`
types in `ui/` and SQLAlchemy column expressions on SQLModel attributes). Failing on all of
them would stop every change; ignoring them would let new ones in. So this runs mypy with
the settings in pyproject.toml (`[tool.mypy]`) and fails when any file has more errors than
`typecheck-baseline.json` records for it, or when the product holds more `type: ignore`
comments than recorded. Fewer is progress: `--update` writes the lower figures (and refuses
to raise any), so the baseline only goes down. mypy and the dependencies are pinned, so the
figures are the same on every machine; an upgrade that changes them updates the baseline in
the same commit.

Usage: .venv/bin/python scripts/typecheck.py [--update]
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BASELINE = ROOT / "scripts" / "typecheck-baseline.json"
TARGETS = ("holovitals_sync", "workers")
ERROR = re.compile(r"^(?P<path>[^:\s]+\.py):\d+: error: ")
IGNORE = re.compile(r"#\s*type:\s*ignore")


def mypy_errors() -> Counter[str]:
    """Errors per file, as mypy reports them."""
    run = subprocess.run(
        [sys.executable, "-m", "mypy", *TARGETS],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if run.returncode not in (0, 1):  # 2: mypy itself failed (a bad setting, a crash)
        sys.stderr.write(run.stdout + run.stderr)
        raise SystemExit("typecheck: mypy did not run")
    return Counter(m["path"] for line in run.stdout.splitlines() if (m := ERROR.match(line)))


def ignores() -> int:
    """`type: ignore` comments in the product code."""
    return sum(
        len(IGNORE.findall(path.read_text(encoding="utf-8")))
        for target in TARGETS
        for path in (ROOT / target).rglob("*.py")
    )


def worse(found: Counter[str], ignored: int, baseline: dict) -> list[str]:
    allowed: dict[str, int] = baseline["errors"]
    problems = [
        f"{path}: {count} mypy errors (baseline {allowed.get(path, 0)})"
        for path, count in sorted(found.items())
        if count > allowed.get(path, 0)
    ]
    if ignored > baseline["type_ignores"]:
        problems.append(
            f"{ignored} `type: ignore` comments (baseline "
            f"{baseline['type_ignores']}): fix the type instead"
        )
    return problems


def main(argv: list[str]) -> int:
    found, ignored = mypy_errors(), ignores()
    baseline = json.loads(BASELINE.read_text()) if BASELINE.exists() else None
    if "--update" in argv:
        if baseline is not None and worse(found, ignored, baseline):
            print("typecheck: the baseline only goes down; fix these first:")
            print("\n".join(worse(found, ignored, baseline)))
            return 1
        BASELINE.write_text(
            json.dumps({"errors": dict(sorted(found.items())), "type_ignores": ignored}, indent=1)
            + "\n"
        )
        print(f"typecheck: baseline written: {sum(found.values())} errors, {ignored} type: ignore")
        return 0
    if baseline is None:
        print("typecheck: no baseline; run with --update")
        return 1
    problems = worse(found, ignored, baseline)
    total, allowed = sum(found.values()), sum(baseline["errors"].values())
    if problems:
        print(
            "typecheck: worse than the baseline (mypy's output: .venv/bin/mypy "
            + " ".join(TARGETS)
            + "):"
        )
        print("\n".join(problems))
        return 1
    better = (
        " (lower now: run scripts/typecheck.py --update)"
        if total < allowed or ignored < baseline["type_ignores"]
        else ""
    )
    print(
        f"typecheck: {total} mypy errors (baseline {allowed}), {ignored} type: ignore "
        f"(baseline {baseline['type_ignores']}){better}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
