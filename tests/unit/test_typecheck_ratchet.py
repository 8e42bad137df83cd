"""The type checker's ratchet (scripts/typecheck.py): worse than the baseline fails, the
baseline only goes down."""

from __future__ import annotations

import importlib.util
import json
from collections import Counter
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "typecheck.py"
spec = importlib.util.spec_from_file_location("typecheck", SCRIPT)
typecheck = importlib.util.module_from_spec(spec)
spec.loader.exec_module(typecheck)

BASELINE = {"errors": {"holovitals_sync/a.py": 3, "holovitals_sync/b.py": 1}, "type_ignores": 5}


def test_fewer_or_equal_errors_pass():
    assert typecheck.worse(Counter({"holovitals_sync/a.py": 2}), 5, BASELINE) == []


def test_more_errors_in_a_file_or_a_new_file_fail():
    problems = typecheck.worse(
        Counter({"holovitals_sync/a.py": 2, "holovitals_sync/b.py": 2, "holovitals_sync/c.py": 1}),
        5,
        BASELINE,
    )
    assert problems == [
        "holovitals_sync/b.py: 2 mypy errors (baseline 1)",
        "holovitals_sync/c.py: 1 mypy errors (baseline 0)",
    ]


def test_more_type_ignores_fail():
    assert "6 `type: ignore`" in typecheck.worse(Counter(), 6, BASELINE)[0]


def test_update_refuses_to_raise_the_baseline(tmp_path, monkeypatch, capsys):
    path = tmp_path / "baseline.json"
    path.write_text(json.dumps(BASELINE))
    monkeypatch.setattr(typecheck, "BASELINE", path)
    monkeypatch.setattr(typecheck, "ignores", lambda: 5)
    monkeypatch.setattr(typecheck, "mypy_errors", lambda: Counter({"holovitals_sync/a.py": 4}))
    assert typecheck.main(["--update"]) == 1
    assert json.loads(path.read_text()) == BASELINE
    monkeypatch.setattr(typecheck, "mypy_errors", lambda: Counter({"holovitals_sync/a.py": 1}))
    assert typecheck.main(["--update"]) == 0
    assert json.loads(path.read_text())["errors"] == {"holovitals_sync/a.py": 1}
    assert typecheck.main([]) == 0
    capsys.readouterr()


@pytest.mark.parametrize(
    "line",
    [
        'holovitals_sync/x.py:12: error: Name "y" is not defined  [name-defined]',
        "workers/jobs.py:3: error: Incompatible types  [assignment]",
    ],
)
def test_error_lines_are_counted_by_file(line):
    assert typecheck.ERROR.match(line)["path"] == line.split(":")[0]
