"""`holovitals-sync up` on a fresh data directory, as the README's run command starts it."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import redis

from holovitals_sync.services.demo import read_demo_users
from tests.e2e.conftest import free_port

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).parents[2]
WORKERS = {"sync": 2, "webhooks": 2, "conflicts": 1, "transformations": 2}


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def _autogroup_nice(pid: int) -> int:
    # "/autogroup-42 nice 10": the scheduling group of the process's session.
    return int(Path(f"/proc/{pid}/autogroup").read_text().split()[-1])


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except FileNotFoundError:
        return ""


def _wait_health(url: str, timeout: float, want: dict[str, int]) -> dict:
    deadline = time.monotonic() + timeout
    body: dict = {}
    while time.monotonic() < deadline:
        try:
            response = httpx.get(url, timeout=5)
            body = response.json()
            workers = {f: q["workers"] for f, q in body.get("queues", {}).items()}
            if response.status_code == 200 and workers == want:
                return body
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(1)
    pytest.fail(f"health never reported every worker up: {body}")


def _wait_http(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    pytest.fail(f"{url} never answered")


@pytest.fixture
def product(tmp_path):
    """`up --demo` with no Redis configured, on free ports, its output in a log file."""
    front, back, ehr = free_port(), free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOLOVITALS_")}
    env.update(
        HOLOVITALS_DATA_DIR=str(tmp_path / "data"),
        HOLOVITALS_FRONTEND_PORT=str(front),
        HOLOVITALS_BACKEND_PORT=str(back),
        HOLOVITALS_SANDBOX_PORT=str(ehr),
        HOLOVITALS_MLLP_PORT=str(free_port()),
        **{f"HOLOVITALS_WORKERS_{family.upper()}": str(n) for family, n in WORKERS.items()},
    )
    log = (tmp_path / "up.log").open("w")
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "holovitals-sync"), "up", "--demo"],
        cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    yield {
        "proc": proc,
        "front": front,
        "back": back,
        "ehr": ehr,
        "data": tmp_path / "data",
        "log": tmp_path / "up.log",
    }
    if proc.poll() is None:  # a failed test: stop it the way a person would, then make sure
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
    log.close()


def test_up_serves_dashboard_health_and_stops_cleanly(product, page):
    health_url = f"http://127.0.0.1:{product['back']}/api/health"
    body = _wait_health(health_url, 300, WORKERS)
    assert body["database"]["ok"] and body["redis"]["ok"]
    assert body["status"] == "ok"

    # No Redis was configured, so the workers registered with a private one on a socket.
    sock = product["data"] / "redis.sock"
    private = redis.Redis(unix_socket_path=str(sock))
    assert len(private.smembers("rq:workers")) == sum(WORKERS.values())
    assert (product["data"] / "holovitals.db").exists()
    # Linux weighs sessions against each other before processes: the worker pools' sessions
    # run below the web app's, or their nice would count for nothing against it (#26).
    started = {p: _cmdline(p) for p in _children(product["proc"].pid)}
    pools = [p for p, command in started.items() if " worker-pool " in command]
    assert len(pools) == len(WORKERS)
    assert {_autogroup_nice(p) for p in pools} == {10}
    (web,) = [p for p, command in started.items() if " run " in command and "reflex" in command]
    assert _autogroup_nice(web) == 0

    # The dashboard shell, and each page reached through the navigation.
    _wait_http(f"http://127.0.0.1:{product['front']}/", 120)
    page.goto(f"http://localhost:{product['front']}/", timeout=120_000)
    # --demo made one user per role; the dashboard asks for a sign-in first.
    page.wait_for_url(re.compile("/signin"), timeout=120_000)
    page.fill("#signin-username", "admin")
    page.fill("#signin-password", read_demo_users(product["data"])["admin"])
    page.click("#signin-submit")
    status = page.locator("#system-status")
    status.wait_for(timeout=120_000)
    page.wait_for_function("document.querySelector('#system-status').innerText === 'ok'")
    assert page.locator(".queue-card").count() == 4
    # --demo: the sandbox EHR answers, and the demo connection to it is listed.
    metadata = httpx.get(f"http://127.0.0.1:{product['ehr']}/fhir/metadata", timeout=10)
    assert metadata.json()["resourceType"] == "CapabilityStatement"
    page.click("#nav-connections")
    # In the list itself: the dashboard left behind names the connection too (its jobs, the
    # demo story's alert), and may still be on screen when the click returns.
    page.locator("#connections-table").get_by_text("Sandbox EHR (demo)").wait_for()
    # Each page reached through the navigation shows its own list: rows, or the empty
    # list's note (the demo story fills some of them while the test looks).
    for nav, title, content in [
        ("webhooks", "Webhooks", "#webhook-subscriptions, :text('No webhook subscriptions yet.')"),
        ("conflicts", "Conflicts", "#conflicts-table, :text('No conflicts match.')"),
        ("audit", "Audit log", ".audit-row"),
        ("alerts", "Alerts", ".alert-row, :text('No alerts here.')"),
    ]:
        page.click(f"#nav-{nav}")
        page.wait_for_url(re.compile(f"/{nav}$"))
        page.locator(content).first.wait_for()
        assert page.locator("#page-title").inner_text() == title

    # A worker pool that dies is reported and started again.
    pools = [p for p in _children(product["proc"].pid) if "sync.high" in _cmdline(p)]
    assert len(pools) == 1
    os.kill(pools[0], signal.SIGKILL)
    deadline = time.monotonic() + 30
    while "workers-sync exited with code -9; restarting it" not in product["log"].read_text():
        assert time.monotonic() < deadline, "the dead worker pool was not reported"
        time.sleep(0.5)
    # The line is logged just before the new pool is spawned (and exec'd): wait for it.
    while not (
        restarted := [p for p in _children(product["proc"].pid) if "sync.high" in _cmdline(p)]
    ):
        assert time.monotonic() < deadline, "the dead worker pool was not started again"
        time.sleep(0.2)
    assert restarted != pools
    # The killed pool's workers stop counting once their heartbeat is stale.
    _wait_health(health_url, 120, WORKERS)

    # SIGTERM stops every child, the private Redis included.
    children = _children(product["proc"].pid)
    product["proc"].send_signal(signal.SIGTERM)
    assert product["proc"].wait(60) == 0
    time.sleep(1)
    assert not [pid for pid in children if Path(f"/proc/{pid}").exists()]
    with pytest.raises(redis.ConnectionError):
        private.ping()


def test_reflex_export_builds_frontend(tmp_path):
    """`reflex export` works with the project's offline toolchain (no bun download)."""
    from holovitals_sync.config import load_settings
    from holovitals_sync.runtime import bin_path, child_env

    env = child_env(load_settings(), "redis://127.0.0.1:6379/15")
    # REFLEX_WEB_WORKDIR moves .web (engineers sharing a checkout each set their own).
    web = ROOT / os.environ.get("REFLEX_WEB_WORKDIR", ".web")
    shutil.rmtree(web / "build", ignore_errors=True)
    result = subprocess.run(
        [bin_path("reflex"), "export", "--frontend-only", "--no-zip"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert (web / "build" / "client" / "index.html").exists()
    assert (web / "build" / "client" / "connections.html").exists()
