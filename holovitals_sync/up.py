"""`holovitals-sync up`: the whole product on one machine."""

from __future__ import annotations

import logging
import os
import subprocess
from pathlib import Path

from . import migrations
from .config import Settings, secret_key
from .db import engine_for, session_scope
from .embedded_redis import REFLEX_KEYSPACE_EVENTS, EmbeddedRedis, EmbeddedRedisError
from .migrations import PROJECT_ROOT
from .runtime import (
    child_env,
    demo_command,
    demo_env,
    frontend_initialised,
    heal_reflex_lock,
    mllp_command,
    reflex_command,
    reflex_init_command,
    sandbox_command,
    worker_command,
    worker_families,
)
from .services.demo import (
    DEMO_USERS_FILE,
    ensure_demo_connection,
    ensure_demo_feed,
    ensure_demo_users,
)
from .supervisor import PRODUCER, WORKER, Child, Supervisor

log = logging.getLogger("holovitals_sync.up")


def _announce_demo_users(settings: Settings, created: dict[str, str]) -> None:
    """Tell whoever started the demo how to sign in (on the console, not in the logs)."""
    where = settings.data_dir / DEMO_USERS_FILE
    if created:
        print("Demo sign-in (also kept in", f"{where}):")  # noqa: T201
        for name, password in created.items():
            print(f"  {name:<9} {password}")  # noqa: T201
    else:
        log.info("demo users admin, operator and viewer: passwords in %s", where)


def prepare_frontend(env: dict[str, str], data_dir: Path) -> bool:
    """Initialise Reflex's `.web` on a first start; False (and the log's tail) on failure."""
    if frontend_initialised():
        return True
    log_path = data_dir / "reflex-init.log"
    print("Preparing the dashboard's web frontend (first start only, a few seconds)…")  # noqa: T201
    with log_path.open("w") as out:
        result = subprocess.run(reflex_init_command(), env=env, cwd=PROJECT_ROOT,
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                check=False)  # fmt: skip
    if result.returncode != 0 or not frontend_initialised():
        tail = log_path.read_text(errors="replace").splitlines()[-15:]
        log.error("preparing the web frontend failed (%s):\n%s", log_path, "\n".join(tail))
        return False
    return True


def run_up(settings: Settings, *, demo: bool, prod: bool) -> int:
    """Migrate, start Redis if none is configured, then supervise workers and the app."""
    # Files `up` and its children create (database journals, the private Redis's append-only
    # file, logs) are the user's alone: the data holds PHI.
    os.umask(0o077)
    engine_for(settings).dispose()
    migrations.upgrade(settings.effective_database_url)
    secret_key(settings)  # generated now, so no two children race to create it
    if demo:
        with session_scope() as session:
            base_url = f"http://127.0.0.1:{settings.sandbox_port}/fhir"
            demo_connection = ensure_demo_connection(session, base_url=base_url)
            session.flush()
            ensure_demo_feed(session, demo_connection)
            created = ensure_demo_users(session, data_dir=settings.data_dir)
        _announce_demo_users(settings, created)

    embedded: EmbeddedRedis | None = None
    redis_url = settings.redis_url
    if redis_url is None:
        embedded = EmbeddedRedis(
            settings.data_dir, notify_keyspace_events=REFLEX_KEYSPACE_EVENTS if prod else ""
        )
        try:
            redis_url = embedded.start()
        except EmbeddedRedisError as exc:
            log.error("cannot start the embedded Redis: %s", exc)
            return 1
        log.info("no HOLOVITALS_REDIS_URL set: using a private Redis at %s", redis_url)

    heal_reflex_lock()
    env = child_env(settings, redis_url)
    if demo:
        env = demo_env(env)
    if not prepare_frontend(env, settings.data_dir):
        if embedded is not None:
            embedded.stop()
        return 1
    if prod:
        # Several backend workers share UI state only through Reflex's Redis state manager.
        env.setdefault("REFLEX_REDIS_URL", redis_url)
        env.setdefault("GRANIAN_WORKERS", str(settings.backend_workers))
    # Stopped in phases: the web app and the demo's story (they make work), then the
    # workers (given stop_grace to reach a checkpoint), then the sandbox EHR; Redis last.
    children = [
        Child(
            f"workers-{family}",
            worker_command(settings, family),
            env,
            PROJECT_ROOT,
            stop_phase=WORKER,
            stop_grace=settings.stop_grace,
            nice=settings.worker_nice,
        )
        for family in worker_families(settings)
    ]
    if demo:
        children.append(Child("sandbox", sandbox_command(settings), env, PROJECT_ROOT))
        children.append(
            Child(
                "demo-story", demo_command(), env, PROJECT_ROOT, oneshot=True, stop_phase=PRODUCER
            )
        )
    children.append(
        Child("reflex", reflex_command(settings, prod=prod), env, PROJECT_ROOT, stop_phase=PRODUCER)
    )
    if settings.mllp_port:  # a producer too: it stores ADT messages that become syncs
        children.append(Child("mllp", mllp_command(), env, PROJECT_ROOT, stop_phase=PRODUCER))
    try:
        # The embedded Redis is watched first: a dead one is restarted on the same socket.
        return Supervisor(children, [embedded] if embedded is not None else []).run()
    finally:
        if embedded is not None:
            embedded.stop()
