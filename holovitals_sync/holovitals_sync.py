"""The Reflex app: registers the pages and mounts the REST/webhook API."""

from __future__ import annotations

import reflex as rx

from .api import create_api
from .ui.pages import listings
from .ui.pages.dashboard import DashboardState, dashboard

app = rx.App(api_transformer=create_api())
app.add_page(dashboard, route="/", title="Dashboard · HoloVitals Sync", on_load=DashboardState.load)
app.add_page(
    listings.connections,
    route="/connections",
    title="Connections · HoloVitals Sync",
    on_load=listings.ListingState.load_connections,
)
app.add_page(
    listings.webhooks,
    route="/webhooks",
    title="Webhooks · HoloVitals Sync",
    on_load=listings.ListingState.load_webhooks,
)
app.add_page(
    listings.conflicts,
    route="/conflicts",
    title="Conflicts · HoloVitals Sync",
    on_load=listings.ListingState.load_conflicts,
)
app.add_page(
    listings.audit,
    route="/audit",
    title="Audit · HoloVitals Sync",
    on_load=listings.ListingState.load_audit,
)
