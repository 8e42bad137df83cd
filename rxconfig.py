"""Reflex configuration. Ports come from the application settings (HOLOVITALS_*)."""

import reflex as rx

from holovitals_sync.config import get_settings

_settings = get_settings()

config = rx.Config(
    app_name="holovitals_sync",
    telemetry_enabled=False,
    # Production builds otherwise pin a "Built with Reflex" badge over the jobs table.
    show_built_with_reflex=False,
    frontend_port=_settings.frontend_port,
    backend_port=_settings.backend_port,
    # Only the dashboard's own origins may call the backend with the user's cookie (Reflex
    # answers any origin, credentials included, by default).
    cors_allowed_origins=_settings.allowed_origins,
    plugins=[
        rx.plugins.RadixThemesPlugin(
            theme=rx.theme(appearance="light", accent_color="teal", radius="medium")
        )
    ],
    disable_plugins=[rx.plugins.SitemapPlugin],
)
