"""The commands `up` runs are the production commands the README documents."""

from __future__ import annotations

from pathlib import Path

from holovitals_sync.config import load_settings
from holovitals_sync.runtime import TOOLS_BIN, child_env, reflex_command, worker_command


def test_worker_command_listens_high_priority_first(monkeypatch, tmp_path):
    monkeypatch.setenv("HOLOVITALS_WORKERS_CONFLICTS", "4")
    argv = worker_command(load_settings(), "conflicts")
    assert Path(argv[0]).name == "rq"
    assert argv[1] == "worker-pool"
    assert argv[argv.index("-c") + 1] == "workers.settings"
    assert argv[argv.index("-n") + 1] == "4"
    assert argv[-3:] == ["conflicts.high", "conflicts.default", "conflicts.low"]


def test_readme_documents_the_worker_command():
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    assert "rq worker-pool -c workers.settings -n 4 -w workers.worker.HoloVitalsWorker" in readme
    assert "sync.high sync.default sync.low" in readme


def test_child_env_uses_local_toolchain(tmp_path, monkeypatch):
    monkeypatch.setenv("HOLOVITALS_DATA_DIR", str(tmp_path))
    env = child_env(load_settings(), "unix:///tmp/x.sock")
    assert env["PATH"].split(":")[0] == str(TOOLS_BIN)
    assert env["REFLEX_USE_SYSTEM_BUN"] == "1"
    assert env["REFLEX_TELEMETRY_ENABLED"] == "false"
    assert env["HOLOVITALS_REDIS_URL"] == "unix:///tmp/x.sock"
    assert env["HOLOVITALS_DATA_DIR"] == str(tmp_path)


def test_reflex_ports_follow_settings(monkeypatch):
    monkeypatch.setenv("HOLOVITALS_FRONTEND_PORT", "3100")
    monkeypatch.setenv("HOLOVITALS_BACKEND_PORT", "8100")
    argv = reflex_command(load_settings())
    assert argv[argv.index("--frontend-port") + 1] == "3100"
    assert argv[argv.index("--backend-port") + 1] == "8100"


def test_prod_serves_everything_on_one_port(monkeypatch):
    monkeypatch.setenv("HOLOVITALS_FRONTEND_PORT", "3100")
    argv = reflex_command(load_settings(), prod=True)
    assert argv[argv.index("--backend-port") + 1] == "3100"
    assert argv[-2:] == ["--env", "prod"]


def test_half_written_reflex_lock_is_dropped(tmp_path):
    from holovitals_sync.runtime import heal_reflex_lock

    lock = tmp_path / "reflex.lock"
    lock.mkdir()
    (lock / "package.json").write_text('{"name": "reflex"}')
    (lock / "bun.lock").write_text("{}")
    assert heal_reflex_lock(lock) is False and lock.exists()
    (lock / "package.json").write_text("")  # what a killed Reflex leaves behind
    assert heal_reflex_lock(lock) is True and not lock.exists()


def test_hot_reload_watches_the_code_but_not_the_data_directory(tmp_path):
    from holovitals_sync.runtime import watched_paths

    package = tmp_path / "pkg"
    (package / "ui").mkdir(parents=True)
    (package / "api.py").write_text("")
    (package / "__pycache__").mkdir()
    config = tmp_path / "rxconfig.py"
    config.write_text("")
    outside = tmp_path / "data"
    assert watched_paths((package, config), [outside]) == [package, config]
    # A data directory inside the package: the package is watched around it.
    inside = package / "ui" / "data"
    inside.mkdir()
    (package / "ui" / "state.py").write_text("")
    assert watched_paths((package, config), [inside]) == [
        package / "api.py",
        package / "ui" / "state.py",
        config,
    ]
    # The whole checkout as the data directory: nothing of it is watched.
    assert watched_paths((package, config), [tmp_path]) == []


def test_up_gives_reflex_only_the_code_to_watch(tmp_path, monkeypatch):
    from holovitals_sync.runtime import APP_CODE, PROJECT_ROOT

    monkeypatch.delenv("REFLEX_HOT_RELOAD_OVERRIDE_PATHS", raising=False)
    monkeypatch.setenv("HOLOVITALS_DATA_DIR", str(PROJECT_ROOT / "data"))
    env = child_env(load_settings(), "unix:///tmp/x.sock")
    watched = [Path(p) for p in env["REFLEX_HOT_RELOAD_OVERRIDE_PATHS"].split(":")]
    assert watched == list(APP_CODE)
    assert env["NPM_CONFIG_REGISTRY"].startswith("http")
