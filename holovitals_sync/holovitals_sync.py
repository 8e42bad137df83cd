"""The Reflex app: registers the pages and mounts the REST/webhook API."""

from __future__ import annotations

import reflex as rx

from .api import create_api
from .ui.pages import listings
from .ui.pages.dashboard import DashboardState, dashboard

# route, page, title, on_load
PAGES = [
    ("/", dashboard, "Dashboard", DashboardState.load),
    ("/connections", listings.connections, "Connections", listings.ListingState.load_connections),
    ("/webhooks", listings.webhooks, "Webhooks", listings.ListingState.load_webhooks),
    ("/conflicts", listings.conflicts, "Conflicts", listings.ListingState.load_conflicts),
    ("/audit", listings.audit, "Audit", listings.ListingState.load_audit),
]

app = rx.App(api_transformer=create_api())
for route, page, title, on_load in PAGES:
    app.add_page(page, route=route, title=f"{title} · HoloVitals Sync", on_load=on_load)
