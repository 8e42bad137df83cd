"""The demo connection uses the sandbox's own demo client."""

from holovitals_sync.sandbox import config as sandbox_config
from holovitals_sync.services import demo


def test_demo_client_matches_sandbox():
    assert demo.DEMO_CLIENT_ID == sandbox_config.DEMO_CLIENT_ID
    assert demo.DEMO_CLIENT_SECRET == sandbox_config.DEMO_CLIENT_SECRET
