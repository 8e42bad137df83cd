"""`python -m holovitals_sync.sandbox [--port 8090] [--patients 500] [--seed 42] ...`"""

from __future__ import annotations

import argparse
import logging

from holovitals_sync.sandbox.config import SandboxConfig
from holovitals_sync.sandbox.server import DEFAULT_PORT, serve


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="holovitals_sync.sandbox", description="Run the sandbox FHIR R4 EHR on loopback."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="0 picks a free port")
    parser.add_argument("--patients", type=int)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--vendor")
    parser.add_argument("--config-json", help="a whole SandboxConfig as JSON")
    parser.add_argument("--port-file", help="write the bound port here once ready")
    parser.add_argument("--quiet", action="store_true", help="warnings and errors only")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.config_json:
        config = SandboxConfig.model_validate_json(args.config_json)
    else:
        given = {
            k: v
            for k, v in vars(args).items()
            if k in ("host", "port", "patients", "seed", "vendor") and v is not None
        }
        config = SandboxConfig(**given)
    serve(config, port_file=args.port_file)


if __name__ == "__main__":
    main()
