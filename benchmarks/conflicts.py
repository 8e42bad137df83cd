"""Benchmark of three-way conflict detection.

    python benchmarks/conflicts.py [--quick]

Takes 50,000 resources (--quick: 5,000) of every type from the sandbox's data generator as
the base versions and derives, per record, a local and a remote copy parsed from JSON (so
no two copies share objects, as with bodies read from the database):

- every remote copy has a new meta.versionId/lastUpdated, half also a changed element;
- 30% of local copies carry a local change on another element (a clean merge);
- 1% change the same element differently on both sides (a conflict, severity computed).

`detection_pairs_per_s` runs `three_way` on every pair (never the pipeline's shortcut for
records without local changes) plus `severity_of` for each conflicting pair, in one process
on one core. `detection_pairs_per_s_pipeline` is the same with that shortcut (a local copy
equal to its base takes the remote as it is), the path `detect_batch` follows.

`detection_db_pairs_per_s_sqlite` is `detect_batch` on a migrated SQLite file (10,000
pairs at most, batches of 100 as the sync loop runs them: load the records, detect, apply
merges, write conflicts, commit), one round, wall-clock time.

Engine rates are pairs per CPU second of this process (`time.process_time`), best of 3.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from collections.abc import Callable
from typing import Any

import orjson
from _common import commit_sha  # noqa: E402 (benchmarks run as scripts)
from sqlmodel import Session, select

from holovitals_sync import migrations
from holovitals_sync.db import create_db_engine
from holovitals_sync.models import EHRConnection, SyncedRecord, Vendor
from holovitals_sync.sandbox.data import generate_patient
from holovitals_sync.services.conflicts import Incoming, detect_batch, severity_of, three_way

ROUNDS = 3
TARGET = 20_000.0
Pair = tuple[dict[str, Any], dict[str, Any], dict[str, Any]]


def resources(n: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    index = 0
    while len(out) < n:
        out.extend(generate_patient(4321, index))
        index += 1
    return out[:n]


def _copy(body: dict[str, Any]) -> dict[str, Any]:
    return orjson.loads(orjson.dumps(body))


def pairs(n: int, seed: int = 7) -> list[Pair]:
    """(base, local, remote) triples with the mix described in the module docstring."""
    rng = random.Random(seed)
    out = []
    for i, base in enumerate(resources(n)):
        local, remote = _copy(base), _copy(base)
        remote["meta"] = {"versionId": "2", "lastUpdated": "2026-11-26T04:00:00Z"}
        if rng.random() < 0.5:
            remote["text"] = {"status": "generated", "div": "<div>remote</div>"}
        if rng.random() < 0.3:
            local["language"] = "en-US"
        if i % 100 == 0:  # 1%: the same element changed differently on both sides
            local["status"], remote["status"] = "amended", "entered-in-error"
        out.append((base, local, remote))
    return out


def detect_all(data: list[Pair], *, shortcut: bool) -> int:
    conflicts = 0
    for base, local, remote in data:
        if shortcut and local == base:
            continue  # nothing local: the remote copy is taken as it is
        result = three_way(base, local, remote)
        if result.conflicts:
            severity_of(remote.get("resourceType", ""), result.paths, remote)
            conflicts += 1
    return conflicts


def _store(engine: Any, data: list[Pair]) -> tuple[int, list[int]]:
    with Session(engine, expire_on_commit=False) as session:
        connection = EHRConnection(name="bench", vendor=Vendor.GENERIC, base_url="http://x")
        session.add(connection)
        session.flush()
        rows = [
            SyncedRecord(
                connection_id=connection.id,
                resource_type=b["resourceType"],
                remote_id=f"{b['resourceType']}-{i}",
                base_body=b,
                local_body=lo,
                remote_body=b,
                remote_version="1",
                dirty=lo != b,
            )
            for i, (b, lo, _) in enumerate(data)
        ]
        session.add_all(rows)
        session.commit()
        return connection.id, [r.id for r in rows]


def detect_in_db(data: list[Pair], batch: int = 100) -> tuple[float, int]:
    """Seconds for `detect_batch` over every pair on SQLite, and the conflicts it found."""
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        migrations.upgrade(url)
        engine = create_db_engine(url)
        connection_id, ids = _store(engine, data)
        conflicts, start = 0, time.perf_counter()
        for at in range(0, len(ids), batch):
            with Session(engine) as session:
                chunk = ids[at : at + batch]
                rows = {
                    r.id: r
                    for r in session.exec(select(SyncedRecord).where(SyncedRecord.id.in_(chunk)))
                }
                pairs_ = [Incoming(rows[rid], data[at + k][2], "2") for k, rid in enumerate(chunk)]
                outcomes = detect_batch(session, connection_id, None, pairs_)
                conflicts += sum(o.action.value == "conflict" for o in outcomes)
                session.commit()
        seconds = time.perf_counter() - start
        engine.dispose()
    return seconds, conflicts


def timed(fn: Callable[[], Any]) -> float:
    start = time.process_time()
    fn()
    return time.process_time() - start


def emit(metric: str, n: int, seconds: float, sha: str, **extra: Any) -> None:
    line = {
        "bench": "conflicts",
        "metric": metric,
        "value": round(n / seconds, 1),
        "unit": "pairs/s",
        **extra,
        "n": n,
        "commit": sha,
    }
    print(orjson.dumps(line).decode(), flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5,000 pairs instead of 50,000")
    args = parser.parse_args(argv)
    n = 5_000 if args.quick else 50_000
    sha, data = commit_sha(), pairs(n)
    found = detect_all(data, shortcut=False)
    assert found == len(range(0, n, 100)), found  # exactly the 1% planted
    best = {"full": float("inf"), "pipeline": float("inf")}
    for _ in range(ROUNDS):
        best["full"] = min(best["full"], timed(lambda: detect_all(data, shortcut=False)))
        best["pipeline"] = min(best["pipeline"], timed(lambda: detect_all(data, shortcut=True)))
    emit("detection_pairs_per_s", n, best["full"], sha, target=TARGET, conflicting=found)
    emit(
        "detection_pairs_per_s_pipeline", n, best["pipeline"], sha, target=TARGET, conflicting=found
    )
    db_n = min(n, 10_000)
    seconds, db_found = detect_in_db(data[:db_n])
    emit("detection_db_pairs_per_s_sqlite", db_n, seconds, sha, conflicting=db_found)


if __name__ == "__main__":
    main()
