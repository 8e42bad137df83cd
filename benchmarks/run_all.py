"""Run every benchmark script, collect their JSON lines, and regenerate BENCHMARKS.md.

    python benchmarks/run_all.py [--quick] [--only NAME ...] [--soak-minutes M]

Each script runs as its own process (one after the other: they would compete for the same
two cores), with `--quick` when asked; scripts absent from benchmarks/ are skipped and
named as such. The JSON lines of the run go to benchmarks/results.jsonl and the report to
BENCHMARKS.md at the top of the repository: per script the command, its wall time, and per
metric this run's value, the baseline measured beside it in the same run, and the target
from the issues with met / not met.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from _common import commit_sha  # noqa: E402 (benchmarks run as scripts)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
REPORT = ROOT / "BENCHMARKS.md"
RESULTS = HERE / "results.jsonl"
Line = dict[str, Any]
Check = Callable[[Line], bool | None]


@dataclass(frozen=True)
class Target:
    """A target from an issue: its wording and the check on one JSON line."""

    text: str
    check: Check
    issue: int


@dataclass
class Script:
    name: str
    quick: list[str]
    full: list[str]
    timeout: float  # seconds, in full mode; quick runs get the same bound
    targets: dict[str, Target] = field(default_factory=dict)


def at_least(key: str, floor: float) -> Check:
    return lambda line: line.get(key) is not None and float(line[key]) >= floor


def below(key: str, ceiling: float) -> Check:
    return lambda line: line.get(key) is not None and float(line[key]) < ceiling


def flag(key: str) -> Check:
    return lambda line: bool(line[key]) if key in line else None


def speedup_target(line: Line) -> bool:
    # "close to linearly up to the per-connection limit": at least 80 % of linear.
    return float(line["value"]) >= 0.8 * min(int(line["workers"]), int(line["limit"]))


def ten_tabs_prod(line: Line) -> bool | None:
    if int(line.get("tabs", 0)) < 10 or line.get("mode") != "prod":
        return None  # the target is for ten tabs on `up --demo --prod`
    return float(line["p95"]) < 300


def large_rss(line: Line) -> bool | None:
    return line["value"] < 300 if line.get("n", 0) >= 200_000 else None


SYNC_TARGETS = {
    "inbound_rps_sqlite": Target(
        ">= 20,000/s (bulk NDJSON) and >= 10x naive",
        lambda ln: ln["value"] >= 20_000 and ln["ratio"] >= 10,
        5,
    ),
    "inbound_rps_postgresql": Target(
        ">= 20,000/s (bulk NDJSON) and >= 10x naive",
        lambda ln: ln["value"] >= 20_000 and ln["ratio"] >= 10,
        5,
    ),
    "inbound_search_rps_sqlite": Target(">= 3,000/s (paged search)", at_least("value", 3000), 5),
    "worker_peak_rss_large_mb": Target("< 300 MB at 200,000 resources", large_rss, 5),
    "rss_growth_large": Target("no growth from 20k to 200k (< 10 %)", below("value", 10), 5),
    **{
        f"speedup_{n}_workers": Target(
            f">= {0.8 * min(n, 5):.1f}x (80 % of linear)", speedup_target, 11
        )
        for n in (2, 3, 5)
    },
    "split_4_workers": Target(
        ">= 3x one worker (5,000 patients, paging cost, 100 ms)", at_least("value", 3), 23
    ),
}
REAL_SERVER_TARGETS = {
    "full_sync_rps_1w": Target(
        ">= 2x the fhirpy script and >= 80 % of the server's ceiling",
        lambda ln: ln["vs_fhirpy_script"] >= 2 and ln["vs_ceiling"] >= 0.8,
        23,
    ),
}
SCRIPTS = [
    Script("sync", ["--quick"], [], 1500, SYNC_TARGETS),
    Script("real_server", ["--patients", "100"], [], 1800, REAL_SERVER_TARGETS),
    Script(
        "tracing",
        ["--quick", "--rounds", "1"],
        [],
        900,
        {
            "traced_bulk_rps_sqlite": Target(
                "tracing on loses at most 10 % of the bulk sync", at_least("ratio", 0.9), 28
            ),
        },
    ),
    Script(
        "transform",
        ["--quick"],
        [],
        600,
        {"rps_no_validation": Target(">= 20,000/s per core", at_least("value", 20_000), 6)},
    ),
    Script(
        "conflicts",
        ["--quick"],
        [],
        600,
        {"detection_pairs_per_s": Target(">= 20,000 pairs/s", at_least("value", 20_000), 7)},
    ),
    Script(
        "webhooks",
        ["--quick"],
        [],
        1800,
        {
            "accepted_rps": Target(">= 1,000 events/s", at_least("value", 1000), 8),
            "latency_p99_ms": Target("< 50 ms", below("value", 50), 8),
            "stored": Target("all sent events stored", flag("all_stored"), 8),
            "closed_loop_rps": Target(">= 0.7x the bare endpoint", at_least("ratio", 0.7), 26),
            "closed_loop_latency_p99_ms": Target("< 50 ms", below("value", 50), 26),
            "closed_loop_processed": Target(
                "every acknowledged event processed exactly once", flag("exactly_once"), 26
            ),
        },
    ),
    Script(
        "fhir_client",
        ["--quick"],
        [],
        600,
        {"paged_search_rps": Target(">= 3,000/s", at_least("value", 3000), 3)},
    ),
    Script(
        "ui_latency",
        ["--quick", "--tabs", "10", "--prod"],
        ["--tabs", "10", "--prod"],
        1800,
        {
            "ui_update_latency_ms": Target("p95 < 1,000 ms", below("p95", 1000), 10),
            "ui_update_latency_ms_tabs": Target("ten tabs, prod: p95 < 300 ms", ten_tabs_prod, 26),
        },
    ),
    Script(
        "soak",
        ["--minutes", "2"],
        ["--minutes", "30"],
        3600,
        {
            "rss_workers_mb": Target("flat (growth <= 20 %)", flag("met"), 11),
            "rss_backend_mb": Target("flat (growth <= 20 %)", flag("met"), 11),
            "log_errors": Target("no error in the logs", flag("met"), 11),
        },
    ),
]


def run_script(script: Script, args: list[str]) -> tuple[list[Line], float, str]:
    """(JSON lines, seconds, error text or "") of one script run."""
    argv = [sys.executable, str(HERE / f"{script.name}.py"), *args]
    began = time.monotonic()
    try:
        out = subprocess.run(
            argv,
            cwd=HERE,
            capture_output=True,
            text=True,
            timeout=script.timeout,
            env=dict(os.environ),
        )
    except subprocess.TimeoutExpired as exc:
        stdout = exc.stdout.decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
        return parse(stdout), time.monotonic() - began, f"timed out after {script.timeout} s"
    lines = parse(out.stdout)
    error = "" if out.returncode == 0 else f"exit {out.returncode}: {out.stderr[-600:]}"
    return lines, time.monotonic() - began, error


def parse(stdout: str) -> list[Line]:
    lines = []
    for raw in stdout.splitlines():
        if raw.startswith("{"):
            try:
                lines.append(orjson.loads(raw))
            except orjson.JSONDecodeError:
                continue
    return lines


def machine() -> str:
    cpu = next(
        (
            ln.split(":", 1)[1].strip()
            for ln in Path("/proc/cpuinfo").read_text().splitlines()
            if ln.startswith("model name")
        ),
        platform.processor(),
    )
    mem = next(
        (
            int(ln.split()[1]) // 2**20
            for ln in Path("/proc/meminfo").read_text().splitlines()
            if ln.startswith("MemTotal")
        ),
        0,
    )
    return f"{os.cpu_count()} cores ({cpu}), {mem} GB RAM, Python {platform.python_version()}"


def fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return "" if value is None else str(value)


def verdict(target: Target | None, line: Line) -> str:
    if target is None:
        return ""
    try:
        met = target.check(line)
    except (KeyError, TypeError, ValueError):
        met = None
    state = "n/a here" if met is None else ("**met**" if met else "**not met**")
    return f"{target.text} (#{target.issue}): {state}"


def baseline_of(line: Line) -> str:
    if "baseline" not in line:
        return ""
    ratio = f" (ratio {fmt(line['ratio'])})" if "ratio" in line else ""
    return f"{fmt(line['baseline'])}{ratio}"


SKIP = {"bench", "metric", "value", "unit", "commit", "baseline", "ratio", "target"}


def details(line: Line) -> str:
    return ", ".join(
        f"{k}={fmt(v)}" for k, v in line.items() if k not in SKIP and not isinstance(v, list | dict)
    )[:200]


def section(
    script: Script, args: list[str], result: tuple[list[Line], float, str] | None
) -> list[str]:
    cmd = " ".join([".venv/bin/python", f"benchmarks/{script.name}.py", *args]).strip()
    out = [f"## {script.name}", "", f"`{cmd}`", ""]
    if script.name == "soak":
        out += [
            "The issue's soak is up to 30 minutes (`soak.py` with no option); this run's",
            "length is in the command above.",
            "",
        ]
    if result is None:
        return [*out, "Script not present in benchmarks/ at this commit: not run.", ""]
    lines, seconds, error = result
    wall = "Wall time not recorded." if seconds != seconds else f"Wall time {seconds:,.0f} s."
    out.append(wall + (f" **Failed**: `{error.strip()}`" if error else ""))
    out += [
        "",
        "| metric | value | unit | baseline (same run) | target | details |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for line in lines:
        target = script.targets.get(line.get("metric", ""))
        out.append(
            f"| {line.get('metric')} | {fmt(line.get('value'))} | {line.get('unit', '')}"
            f" | {baseline_of(line)} | {verdict(target, line)} | {details(line)} |"
        )
    return [*out, ""]


HEADER = """# Benchmarks

Regenerated by `.venv/bin/python benchmarks/run_all.py{mode}` on {date} at commit `{sha}`
({tree}). Machine: {machine}.

**Load**: two cores, load average {load} at the start of the run. When other work shares
those cores (test suites, browsers, dev servers), absolute figures are noisy and low. Every
baseline below was measured in the same run, next to the
figure it is compared with, so ratios are more meaningful than absolute rates. Targets
come from the issues named beside them; "n/a here" means this run's size does not test
the target (e.g. a quick run). Raw JSON lines: `benchmarks/results.jsonl`.
"""


SAVED_NOTE = """
Assembled with `--from-results` from JSON lines saved by runs of this session: a section
may hold lines of more than one run (its details, e.g. `patients` or `n`, tell them apart;
each line's commit is in `benchmarks/results.jsonl`).
"""


def report(mode: str, results: list[tuple[Script, list[str], Any]]) -> str:
    tree = subprocess.run(
        ["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True
    ).stdout
    head = HEADER.format(
        mode=mode,
        date=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        sha=commit_sha(),
        tree="with uncommitted changes" if tree.strip() else "clean tree",
        machine=machine(),
        load="not recorded: assembled afterwards"
        if "--from-results" in mode
        else ", ".join(f"{x:.1f}" for x in os.getloadavg()),
    )
    body = [line for script, args, result in results for line in section(script, args, result)]
    note = SAVED_NOTE if "--from-results" in mode else ""
    return head + note + "\n" + "\n".join(body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="each script's quick form")
    parser.add_argument("--only", action="append", choices=[s.name for s in SCRIPTS])
    parser.add_argument("--soak-minutes", type=float, default=None)
    parser.add_argument(
        "--from-results",
        type=Path,
        default=None,
        metavar="JSONL",
        help="run nothing: rebuild BENCHMARKS.md from saved JSON lines",
    )
    parser.add_argument(
        "--large",
        action="store_true",
        help="sync.py also measures worker memory at 20k vs 200k resources",
    )
    opts = parser.parse_args()
    if opts.from_results is not None:
        mode = f"{mode_of(opts)} --from-results {opts.from_results}"
        REPORT.write_text(report(mode, saved(opts.from_results, opts)))
        return
    results = []
    with RESULTS.open("w") as raw:
        for script in SCRIPTS:
            if opts.only and script.name not in opts.only:
                continue
            args = script_args(script, opts)
            if not (HERE / f"{script.name}.py").exists():
                results.append((script, args, None))
                continue
            print(f"running {script.name} {' '.join(args)}", file=sys.stderr, flush=True)
            result = run_script(script, args)
            for line in result[0]:
                raw.write(orjson.dumps(line).decode() + "\n")
                print(orjson.dumps(line).decode(), flush=True)
            raw.flush()
            results.append((script, args, result))
    REPORT.write_text(report(mode_of(opts), results))


def script_args(script: Script, opts: argparse.Namespace) -> list[str]:
    """The arguments run_all gives one script under these options."""
    args = list(script.quick if opts.quick else script.full)
    if script.name == "soak" and opts.soak_minutes is not None:
        args = ["--minutes", f"{opts.soak_minutes:g}"]
    if script.name == "sync" and opts.large:
        args += [f"--only={part}" for part in ("inbound", "speedup", "large")]
    return args


def mode_of(opts: argparse.Namespace) -> str:
    mode = " --quick" if opts.quick else ""
    if opts.soak_minutes is not None:
        mode += f" --soak-minutes {opts.soak_minutes:g}"
    if opts.large:
        mode += " --large"
    return mode


def saved(path: Path, opts: argparse.Namespace) -> list[tuple[Script, list[str], Any]]:
    """Sections from JSON lines saved by an earlier run (wall times unknown)."""
    lines = parse(path.read_text())
    out = []
    for script in SCRIPTS:
        mine = [line for line in lines if line.get("bench") == script.name]
        present = (HERE / f"{script.name}.py").exists()
        result = (
            (mine, float("nan"), "" if mine else "no saved lines: not run")
            if (mine or present)
            else None
        )
        out.append((script, script_args(script, opts), result))
    return out


if __name__ == "__main__":
    main()
