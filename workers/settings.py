"""RQ settings module: `rq worker-pool -c workers.settings <queues>`.

The Redis URL comes from `HOLOVITALS_REDIS_URL` through the application settings, so workers
on other machines are configured exactly like the backend.

RQ imports this module in the worker's parent process, before it forks a work horse per
job, so it is also where the work horses' common imports are loaded once (see
`runner.warm_up`).
"""

from __future__ import annotations

import sys

from holovitals_sync import telemetry
from holovitals_sync.config import ConfigError, get_settings
from holovitals_sync.services.orchestration.runner import warm_up

try:
    _settings = get_settings()
except ConfigError as exc:
    sys.exit(str(exc))

if _settings.redis_url is None:
    sys.exit(
        "HOLOVITALS_REDIS_URL: expected a redis:// or unix:// URL for workers "
        "(only `holovitals-sync up` starts an embedded Redis)"
    )

REDIS_URL = _settings.redis_url
# Before anything creates the database engine or an HTTP client: the instrumentations wrap
# what is created after them (off unless OTEL_EXPORTER_OTLP_ENDPOINT is set).
telemetry.start("worker")
warm_up()
