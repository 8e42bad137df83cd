"""Fixtures shared with the webhook tests: settings, worker processes, a subscriber."""

from tests.integration.webhooks.conftest import receiver, wh_db, workers

__all__ = ["receiver", "wh_db", "workers"]
