"""Browser and whole-product fixtures: Debian's chromium driven by Playwright."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

CHROMIUM = os.environ.get("HOLOVITALS_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    if not shutil.which(CHROMIUM) and not os.path.exists(CHROMIUM):
        pytest.fail(f"browser tests need chromium at {CHROMIUM} (scripts/setup.sh --test)")
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture
def page(browser) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    tab = context.new_page()
    yield tab
    context.close()


# Screenshots go to a temporary folder, so a test run never rewrites tracked files;
# `scripts/screenshots.sh` points this at docs/screenshots to refresh the README's pictures.
SCREENSHOTS = Path(
    os.environ.get("HOLOVITALS_SCREENSHOTS_DIR")
    or Path(tempfile.gettempdir()) / f"holovitals-screenshots-{os.getpid()}"
)
WORKERS = {"sync": 2, "webhooks": 2, "conflicts": 1, "transformations": 2}


@dataclass
class DemoApp:
    """`holovitals-sync up --demo`, started the README's way, shared by the browser tests."""

    front: int
    back: int
    ehr: int
    data: Path
    log: Path
    proc: subprocess.Popen
    passwords: dict[str, str] = field(default_factory=dict)
    sessions: dict[str, str] = field(default_factory=dict)  # role -> API session cookie
    env: dict[str, str] = field(default_factory=dict)  # what `up` was started with

    def start(self) -> None:
        """Start `up --demo` (again: the same data directory, ports and settings)."""
        with self.log.open("a") as log:
            self.proc = subprocess.Popen(
                [str(Path(sys.executable).parent / "holovitals-sync"), "up", "--demo"],
                cwd=self.data.parent,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def url(self) -> str:
        return f"http://localhost:{self.front}"

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.back}/api"

    @property
    def fhir(self) -> str:
        return f"http://127.0.0.1:{self.ehr}/fhir"

    @property
    def redis_url(self) -> str:
        return f"unix://{self.data / 'redis.sock'}"

    def api_client(self, role: str = "admin") -> httpx.Client:
        """An HTTP client for the REST API, signed in (session cookie) as that demo user.

        One session per role for the whole run: each sign-in hashes a password (argon2, two
        at a time per process), which a new sign-in per client would repeat for nothing.
        """
        if role not in self.sessions:
            credentials = {"username": role, "password": self.passwords[role]}
            response = httpx.post(f"{self.api}/auth/login", json=credentials, timeout=30)
            response.raise_for_status()
            self.sessions[role] = response.cookies["hv_session"]
        return httpx.Client(
            base_url=self.api, timeout=30, cookies={"hv_session": self.sessions[role]}
        )

    def sign_in(self, page, role: str = "admin", path: str = "/") -> None:
        """Sign in through the sign-in page as the demo user of that role, then open path."""
        page.goto(f"{self.url}{path}", timeout=180_000)
        page.wait_for_url(re.compile(r"/signin"), timeout=180_000)
        page.fill("#signin-username", role)
        page.fill("#signin-password", self.passwords[role])
        page.click("#signin-submit")
        page.wait_for_url(f"{self.url}{path}", timeout=60_000)


def wait_ready(app: DemoApp, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if app.proc.poll() is not None:
            pytest.fail(f"up --demo exited: {app.log.read_text()[-3000:]}")
        try:
            health = httpx.get(f"{app.api}/health", timeout=5).json()
            workers = {f: q["workers"] for f, q in health.get("queues", {}).items()}
            front = httpx.get(f"http://127.0.0.1:{app.front}/", timeout=5).status_code
            if workers == WORKERS and front == 200:
                return
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(1)
    pytest.fail(f"up --demo never became ready: {app.log.read_text()[-3000:]}")


@pytest.fixture(scope="session")
def demo_app(tmp_path_factory) -> Iterator[DemoApp]:
    """One `up --demo` for every browser test: a fresh data directory, free ports."""
    from holovitals_sync.services.demo import read_demo_users

    root = tmp_path_factory.mktemp("demo-app")
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOLOVITALS_")}
    front, back, ehr = free_port(), free_port(), free_port()
    env.update(
        HOLOVITALS_DATA_DIR=str(root / "data"),
        HOLOVITALS_FRONTEND_PORT=str(front),
        HOLOVITALS_BACKEND_PORT=str(back),
        HOLOVITALS_SANDBOX_PORT=str(ehr),
        HOLOVITALS_MLLP_PORT=str(free_port()),
        HOLOVITALS_WEBHOOK_ALLOW_HOSTS="127.0.0.1",  # the webhook tests' loopback receiver
        **{f"HOLOVITALS_WORKERS_{family.upper()}": str(n) for family, n in WORKERS.items()},
    )
    # Reflex's dev server restarts its backend when a file under the project changes; a
    # test run must not lose its page state to an edit made elsewhere meanwhile.
    (root / "no-reload").mkdir()
    env["REFLEX_HOT_RELOAD_OVERRIDE_PATHS"] = str(root / "no-reload")
    app = DemoApp(front, back, ehr, root / "data", root / "up.log", None, env=env)  # type: ignore[arg-type]
    app.start()
    try:
        wait_ready(app, 420)
        app.passwords = read_demo_users(app.data)
        yield app
    finally:
        proc = app.proc  # a test may have stopped and started it again
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(90)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def screenshot(page, name: str) -> Path:
    """Save what the browser shows as <SCREENSHOTS>/<name>.png (the README uses the best)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
