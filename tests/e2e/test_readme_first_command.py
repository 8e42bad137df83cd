"""The README's first command, run word for word on a fresh clone, as a new user runs it.

No shortcut the user does not get: the command is read from the README, the clone has its own
`.venv` and `.tools` made by `scripts/setup.sh` (no flag), the data directory is the default
`./data` inside the clone, the ports are the defaults, Reflex's dev reload is as `up` sets it,
and the environment carries nothing of this project's. Chromium then signs in with a demo
password from `data/demo-users.txt`, and Ctrl-C (SIGINT to the terminal's process group)
stops everything.

Nothing may need the network beyond the package registries: every request the browser makes
must stay on loopback (the API docs page included), and the log must show no failed attempt
to reach anything else.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from holovitals_sync.services.demo import read_demo_users

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).parents[2]
DEFAULT_PORTS = {"dashboard": 3000, "API": 8000, "sandbox EHR": 9100}
LOOPBACK = {"localhost", "127.0.0.1", "::1", "[::1]"}
# What a start that reached for the internet, or that kept restarting, leaves in the log.
BAD_LINES = re.compile(
    r"Failed to connect|npmmirror|ConnectError|Name or service not known|"
    r"Temporary failure in name resolution|refused to gracefully stop|Traceback"
)


def readme_first_command() -> str:
    """The line under "# 1." in the README's first bash block."""
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"```bash\n(.*?)```", readme, re.S)
    assert block, "the README has no bash block"
    lines = block.group(1).splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("# 1."))
    return lines[first + 1].strip()


def user_env() -> dict[str, str]:
    """This shell's environment without anything of the project's or the test run's."""
    drop = ("HOLOVITALS_", "REFLEX_", "PYTEST_", "VIRTUAL_ENV", "PYTHONPATH", "NPM_CONFIG_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    venv_bin = str(ROOT / ".venv" / "bin")
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep)
                                  if p != venv_bin)  # fmt: skip
    return env


def port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def processes_in(folder: Path) -> list[str]:
    """Processes running from the clone: by executable, working directory or arguments."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            cwd = os.readlink(proc / "cwd")
        except OSError:
            continue
        if str(folder) in cmdline or cwd.startswith(str(folder)):
            found.append(f"{proc.name}: {cmdline[:160]}")
    return found


@pytest.fixture
def clone(tmp_path) -> Iterator[Path]:
    busy = [f"{name} port {port}" for name, port in DEFAULT_PORTS.items() if port_in_use(port)]
    if busy:
        pytest.fail(f"the README's command needs its default ports, in use here: {busy}")
    folder = tmp_path / "holovitals-sync"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(folder)], check=True)
    yield folder
    for line in processes_in(folder):  # a failed test: leave nothing behind
        os.kill(int(line.split(":")[0]), signal.SIGKILL)


def wait_for_health(proc: subprocess.Popen, log: Path, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the README's command exited {proc.returncode}:\n"
                        f"{log.read_text()[-4000:]}")  # fmt: skip
        try:
            response = httpx.get("http://127.0.0.1:8000/api/health", timeout=5)
            if response.status_code == 200:
                return response.json()
        except httpx.HTTPError:
            pass
        time.sleep(2)
    pytest.fail(f"/api/health never answered 200:\n{log.read_text()[-4000:]}")


def sign_in_with_demo_password(browser, folder: Path, requested: list[str]) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.on("request", lambda request: requested.append(request.url))
    page.goto("http://localhost:3000/", timeout=180_000)
    page.wait_for_url(re.compile(r"/signin"), timeout=180_000)
    page.fill("#signin-username", "admin")
    page.fill("#signin-password", read_demo_users(folder / "data")["admin"])
    page.click("#signin-submit")
    page.wait_for_url("http://localhost:3000/", timeout=60_000)
    page.wait_for_function(
        "document.querySelector('#system-status')?.innerText === 'ok'", timeout=120_000
    )
    # The API's docs page works without the internet: Swagger UI comes from the package.
    page.goto("http://localhost:8000/api/docs")
    page.locator(".swagger-ui .info .title").wait_for(timeout=60_000)
    assert "HoloVitals Sync API" in page.locator(".swagger-ui .info .title").inner_text()
    context.close()


def test_readme_first_command_on_a_fresh_clone(clone, browser, tmp_path):
    command = readme_first_command()
    assert command == "scripts/setup.sh && .venv/bin/holovitals-sync up --demo"
    log_path = tmp_path / "first-command.log"
    with log_path.open("w") as log:
        # A new session stands for the user's terminal: Ctrl-C reaches its whole group.
        proc = subprocess.Popen(["bash", "-c", command], cwd=clone, env=user_env(),
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip
    try:
        body = wait_for_health(proc, log_path, timeout=1500)
        assert body["database"]["ok"] and body["redis"]["ok"]
        # The defaults: the data directory inside the clone, with the private Redis in it.
        assert (clone / "data" / "holovitals.db").exists()
        assert (clone / "data" / "redis.sock").exists()
        requested: list[str] = []
        sign_in_with_demo_password(browser, clone, requested)
        # Still up, and never restarted by its own writes into ./data meanwhile.
        assert httpx.get("http://127.0.0.1:8000/api/health", timeout=10).status_code == 200
        outside = {url for url in requested if urlsplit(url).hostname not in LOOPBACK
                   and not url.startswith(("data:", "blob:"))}  # fmt: skip
        assert not outside, f"the browser reached beyond loopback: {sorted(outside)[:10]}"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C in the user's terminal
        proc.wait(90)
    output = log_path.read_text()
    assert proc.returncode in (0, 130), output[-4000:]
    bad = sorted({m.group(0) for m in BAD_LINES.finditer(output)})
    assert not bad, f"the start printed {bad}:\n{output[-4000:]}"
    assert "uv run reflex run" not in output
    time.sleep(2)
    assert processes_in(clone) == [], "Ctrl-C left processes running"
    assert not any(port_in_use(port) for port in DEFAULT_PORTS.values())
