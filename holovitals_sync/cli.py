"""`holovitals-sync`: run, migrate and operate HoloVitals Sync from the command line."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable

from .config import ConfigError, Settings, get_settings

log = logging.getLogger("holovitals_sync.cli")


def _setup_logging(settings: Settings) -> None:
    from .telemetry import logs

    logs.configure(settings.log_format, settings.log_level)
    # Alembic names each of its plugins at INFO on every start: noise for a user.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)


def cmd_migrate(settings: Settings, _args: argparse.Namespace) -> int:
    """Upgrade the database to the newest schema."""
    from . import migrations
    from .db import engine_for

    engine_for(settings).dispose()  # creates the data directory for SQLite
    migrations.upgrade(settings.effective_database_url)
    log.info("database is at the newest schema")
    return 0


def cmd_up(settings: Settings, args: argparse.Namespace) -> int:
    """Run everything on this machine: migrate, Redis, workers, the Reflex app."""
    from .up import run_up

    return run_up(settings, demo=args.demo, prod=args.prod)


def cmd_sandbox(settings: Settings, args: argparse.Namespace) -> int:
    """Serve the sandbox EHR (a FHIR R4 server with synthetic patients) on loopback."""
    from pydantic import ValidationError

    from .sandbox.config import SandboxConfig
    from .sandbox.server import serve

    try:
        config = SandboxConfig(
            host=args.host,
            port=args.port or settings.sandbox_port,
            vendor=args.vendor,
            patients=args.patients,
            seed=args.seed,
            adt_target=args.adt_to,
        )
    except ValidationError as exc:
        error = exc.errors()[0]
        sys.stderr.write(f"holovitals-sync sandbox: --{error['loc'][0]}: {error['msg']}\n")
        return 2
    serve(config)
    return 0


def cmd_mllp(settings: Settings, args: argparse.Namespace) -> int:
    """Listen for HL7 v2 ADT feeds over MLLP (acknowledged once stored; see the README)."""
    from .mllp.server import run

    if args.port is not None:
        settings = settings.model_copy(update={"mllp_port": args.port})
    if args.host is not None:
        settings = settings.model_copy(update={"mllp_host": args.host})
    return run(settings)


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    """Give the demo's screens something real to show: syncs, a conflict, a failure, an alert."""
    from .services.demo_story import Story, StoryError, tell

    base = args.fhir_base or f"http://127.0.0.1:{settings.sandbox_port}/fhir"
    try:
        if tell(Story(settings, base)) is None:
            log.info("demo story: already told for this data directory")
    except StoryError as exc:
        log.error("demo story stopped: %s", exc)
        return 1
    return 0


def cmd_keys(_settings: Settings, args: argparse.Namespace) -> int:
    """Generate a signing key pair for SMART Backend Services and print its public JWKS."""
    import json
    import os

    from .fhir.keys import generate_key_pair

    pair = generate_key_pair(args.alg)
    if args.out:
        fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(pair.private_key_pem)
        log.info("private key written to %s (mode 0600)", args.out)
    sys.stdout.write(json.dumps(pair.jwks, indent=2) + "\n")
    return 0


def cmd_health(settings: Settings, _args: argparse.Namespace) -> int:
    """Print the health report as JSON; exit 1 when the database or Redis is down."""
    import json

    from .services.health import check_health

    report = check_health(settings)
    sys.stdout.write(json.dumps(report.model_dump(), indent=2) + "\n")
    return 0 if report.healthy else 1


def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    import getpass

    first = getpass.getpass("Password (12+ characters): ")
    if getpass.getpass("Again: ") != first:
        raise ValueError("the passwords differ")
    return first


def cmd_user_create(settings: Settings, args: argparse.Namespace) -> int:
    """Create a user who can sign in to the dashboard and create API tokens."""
    from .db import session_scope
    from .models import Role
    from .services import audit, auth

    try:
        password = _read_password(args)
        with session_scope() as session:
            auth.create_user(session, username=args.username, password=password,
                             role=Role(args.role), actor=audit.Actor.system("cli"))  # fmt: skip
    except ValueError as exc:
        sys.stderr.write(f"holovitals-sync user create: {exc}\n")
        return 2
    log.info("user %s created with role %s", args.username, args.role)
    return 0


def cmd_audit_verify(_settings: Settings, _args: argparse.Namespace) -> int:
    """Check the audit log's hash chain; exit 1 naming the first edited or missing entry."""
    from .db import session_scope
    from .services.audit import verify_chain

    with session_scope() as session:
        report = verify_chain(session)
    if report.ok:
        sys.stdout.write(f"audit log intact: {report.entries} entries\n")
        return 0
    sys.stdout.write(f"audit log broken at entry {report.first_bad_seq}: {report.problem}\n")
    return 1


def cmd_rotate_key(settings: Settings, args: argparse.Namespace) -> int:
    """Re-encrypt every stored secret with a new key."""
    from .db import session_scope
    from .services.key_rotation import rotate_key

    if settings.secret_key and not args.new_key:
        sys.stderr.write("HOLOVITALS_SECRET_KEY is set: pass --new-key and then set it to that\n")
        return 2
    with session_scope() as session:
        count = rotate_key(
            session, settings, new_key=args.new_key.encode() if args.new_key else None
        )
    sys.stdout.write(f"re-encrypted {count} secrets\n")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="holovitals-sync", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help=cmd_up.__doc__)
    up.add_argument("--demo", action="store_true", help="also start the sandbox EHR with demo data")
    up.add_argument("--prod", action="store_true", help="serve a production build of the UI")
    up.set_defaults(func=cmd_up)

    sub.add_parser("migrate", help=cmd_migrate.__doc__).set_defaults(func=cmd_migrate)
    sub.add_parser("health", help=cmd_health.__doc__).set_defaults(func=cmd_health)

    mllp = sub.add_parser("mllp", help=cmd_mllp.__doc__)
    mllp.add_argument("--host", help="default: HOLOVITALS_MLLP_HOST")
    mllp.add_argument("--port", type=int, help="default: HOLOVITALS_MLLP_PORT")
    mllp.set_defaults(func=cmd_mllp)

    demo = sub.add_parser("demo", help=cmd_demo.__doc__)
    demo.add_argument(
        "--fhir-base",
        help="the sandbox's FHIR base URL (default: "
        "http://127.0.0.1:<HOLOVITALS_SANDBOX_PORT>/fhir)",
    )
    demo.set_defaults(func=cmd_demo)

    sandbox = sub.add_parser("sandbox", help=cmd_sandbox.__doc__)
    sandbox.add_argument("--vendor", default="generic")
    sandbox.add_argument("--host", default="127.0.0.1")
    sandbox.add_argument("--port", type=int, default=0, help="default: HOLOVITALS_SANDBOX_PORT")
    sandbox.add_argument("--patients", type=int, default=50)
    sandbox.add_argument("--seed", type=int, default=7)
    sandbox.add_argument(
        "--adt-to",
        metavar="HOST:PORT",
        help="send each clinic day's ADT messages over MLLP to this listener",
    )
    sandbox.set_defaults(func=cmd_sandbox)

    user = sub.add_parser("user", help="dashboard and API users")
    user_sub = user.add_subparsers(dest="user_command", required=True)
    create = user_sub.add_parser("create", help=cmd_user_create.__doc__)
    create.add_argument("--username", required=True)
    create.add_argument("--role", choices=["admin", "operator", "viewer"], default="viewer")
    create.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of standard input",
    )
    create.set_defaults(func=cmd_user_create)

    audit = sub.add_parser("audit", help="the audit log")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True)
    audit_sub.add_parser("verify", help=cmd_audit_verify.__doc__).set_defaults(
        func=cmd_audit_verify
    )

    rotate = sub.add_parser("rotate-key", help=cmd_rotate_key.__doc__)
    rotate.add_argument("--new-key", help="the new Fernet key (default: generate one)")
    rotate.set_defaults(func=cmd_rotate_key)

    keys = sub.add_parser("keys", help="signing keys for SMART Backend Services")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    generate = keys_sub.add_parser("generate", help=cmd_keys.__doc__)
    generate.add_argument("--alg", choices=["RS384", "ES384"], default="RS384")
    generate.add_argument("--out", help="write the private key (PEM) to this file")
    generate.set_defaults(func=cmd_keys)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `holovitals-sync` console script."""
    args = build_parser().parse_args(argv)
    try:
        settings = get_settings()
    except ConfigError as exc:
        sys.stderr.write(f"holovitals-sync: configuration error: {exc}\n")
        return 2
    _setup_logging(settings)
    func: Callable[[Settings, argparse.Namespace], int] = args.func
    return func(settings, args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
