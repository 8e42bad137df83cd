"""The page frame every dashboard page shares: navigation on the left, content on the right."""

from __future__ import annotations

import json

import reflex as rx
from reflex_base.constants import Dirs
from reflex_base.utils.imports import ImportVar
from reflex_base.vars import VarData
from reflex_components_core.core.banner import has_connection_errors
from reflex_components_core.el.elements.base import BaseHTML

from ..state.session import SessionState

NAV_ITEMS = [
    ("Dashboard", "/", "layout-dashboard"),
    ("Connections", "/connections", "plug"),
    ("Webhooks", "/webhooks", "webhook"),
    ("Conflicts", "/conflicts", "git-compare"),
    ("Records", "/records", "database"),
    ("Audit", "/audit", "scroll-text"),
    ("Alerts", "/alerts", "bell"),
]


def _nav_link(label: str, href: str, icon: str) -> rx.Component:
    active = rx.State.router.url.path == href
    return rx.link(
        rx.hstack(rx.icon(icon, size=18), rx.text(label, size="3"), align="center", spacing="2"),
        href=href,
        id=f"nav-{label.lower()}",
        underline="none",
        padding="0.5em 0.75em",
        border_radius="6px",
        width="100%",
        color=rx.cond(active, rx.color("accent", 11), rx.color("gray", 11)),
        background_color=rx.cond(active, rx.color("accent", 3), "transparent"),
        _hover={"background_color": rx.color("accent", 3)},
    )


def sidebar() -> rx.Component:
    return rx.vstack(
        rx.hstack(
            rx.icon("heart-pulse", size=22, color=rx.color("accent", 10)),
            rx.heading("HoloVitals Sync", size="4"),
            align="center",
            padding_bottom="1em",
        ),
        *[_nav_link(*item) for item in NAV_ITEMS],
        rx.spacer(),
        _who_am_i(),
        width="14em",
        height="100vh",
        position="sticky",
        top="0",
        padding="1.25em 0.75em",
        border_right=f"1px solid {rx.color('gray', 5)}",
        background_color=rx.color("gray", 2),
        spacing="1",
    )


def backend_url(path: str | rx.Var[str]) -> rx.Var[str]:
    """`path` on the backend as this page reaches it: the way Reflex's frontend finds its own
    backend (`getBackendURL`: rx config `api_url`, with the page's host for localhost; in
    development another port than the page's, in production the page's own).

    `path` may be a state var (a link whose query follows the page's filters)."""
    imports = VarData(
        imports={
            f"$/{Dirs.STATE_PATH}": [ImportVar(tag="getBackendURL")],
            "$/env.json": [ImportVar(tag="env", is_default=True)],
        }
    )
    if isinstance(path, rx.Var):
        expr, data = f"({path._js_expr})", VarData.merge(path._get_all_var_data(), imports)
    else:
        expr, data = json.dumps(path), imports
    return rx.Var(
        _js_expr=f"new URL({expr}, getBackendURL(env.PING)).href", _var_type=str, _var_data=data
    )


class PostForm(BaseHTML):
    """A form the browser itself posts, as a navigation (`rx.form` makes a submit a Reflex
    event instead): only an HTTP answer can set or delete the HttpOnly session cookie."""

    tag = "form"
    action: rx.Var[str]
    method: rx.Var[str]


def api_form(path: str, *children: rx.Component, **props: object) -> rx.Component:
    """A form posted to the API's `path` (urlencoded), whose answer the browser follows.

    Put it under an `rx.cond` on the page's state, so the browser renders it after loading:
    `action` is computed there, and React keeps a prerendered page's attributes as built.
    """
    return PostForm.create(*children, action=backend_url(path), method="post", **props)


def _who_am_i() -> rx.Component:
    return rx.vstack(
        rx.hstack(
            rx.icon("circle-user", size=18),
            rx.text(SessionState.username, size="2", id="user-name"),
            rx.badge(SessionState.role, id="user-role", size="1"),
            align="center",
            spacing="2",
        ),
        rx.cond(
            SessionState.signed_in,
            api_form(
                "/api/auth/logout",
                rx.button(
                    rx.icon("log-out", size=14),
                    "Sign out",
                    type="submit",
                    id="sign-out",
                    variant="ghost",
                    size="1",
                ),
            ),
        ),  # fmt: skip
        spacing="2",
        padding_top="1em",
        border_top=f"1px solid {rx.color('gray', 5)}",
        width="100%",
    )


def connection_lost() -> rx.Component:
    """Said plainly while the browser cannot reach the server (a restart, a network cut).

    Everything on the page is then as it was at the last answer: no part of it (database,
    Redis) is blamed for what is the browser's own lost connection.
    """
    return rx.cond(
        has_connection_errors,
        rx.callout(
            "The HoloVitals server cannot be reached. Reconnecting… The page catches "
            "up by itself once it answers.",
            icon="wifi-off",
            color_scheme="amber",
            width="100%",
            id="connection-lost",
        ),
    )


def operator_only(component: rx.Component) -> rx.Component:
    """Render a control that changes something only for operators and admins.

    Viewers never receive the control at all; the handler behind it checks the role again.
    """
    return rx.cond(SessionState.can_operate, component)


def admin_only(component: rx.Component) -> rx.Component:
    return rx.cond(SessionState.is_admin, component)


def page_frame(title: str, *children: rx.Component) -> rx.Component:
    """A page with the shared navigation and a heading.

    The content column may shrink below its widest child (`min_width` 0, a flex item would
    otherwise grow to it): a wide table then scrolls inside its own box and the page itself
    never scrolls sideways.
    """
    return rx.hstack(
        sidebar(),
        rx.vstack(
            rx.heading(title, size="6", id="page-title"),
            connection_lost(),
            *children,
            padding="1.5em 2em",
            width="100%",
            min_width="0",
            flex="1 1 0",
            spacing="4",
            id="page-content",
        ),
        spacing="0",
        align="start",
        width="100%",
    )


# Radix centres a dialog in a scrolling overlay with 40 px above and max(40 px, 6vh) below:
# a dialog capped at the rest of the window never makes that overlay scroll.
DIALOG_MAX_HEIGHT = "calc(100dvh - 40px - max(40px, 6vh) - 8px)"


def dialog_content(
    title: rx.Component | str,
    *body: rx.Component,
    footer: rx.Component,
    description: rx.Component | None = None,
    **props: object,
) -> rx.Component:
    """A dialog's box whose middle scrolls while its title and buttons stay in view.

    Radix scrolls a dialog taller than the window as a whole, taking Save and Close out of
    sight; here only the body scrolls, so the buttons are reachable at any window height.
    """
    return rx.dialog.content(
        rx.dialog.title(title),
        *([description] if description is not None else []),
        rx.box(*body, class_name="dialog-body", overflow_y="auto", flex="1 1 auto",
               min_height="0", width="100%", padding_right="0.5em"),
        rx.box(footer, class_name="dialog-footer", flex_shrink="0", width="100%",
               padding_top="1em"),
        display="flex", flex_direction="column", max_height=DIALOG_MAX_HEIGHT,
        overflow="hidden", **props,
    )  # fmt: skip


def empty_state(message: str) -> rx.Component:
    return rx.callout(message, icon="info", color_scheme="gray", width="100%")


def data_table(rows: rx.Var, columns: list[tuple[str, str]], empty: str) -> rx.Component:
    """A read-only table of rows (dicts of strings), or an empty-state note."""
    return rx.cond(
        rows.length() > 0,  # type: ignore[attr-defined]
        rx.table.root(
            rx.table.header(rx.table.row(*[rx.table.column_header_cell(h) for h, _ in columns])),
            rx.table.body(
                rx.foreach(
                    rows,
                    lambda row: rx.table.row(*[rx.table.cell(row[key]) for _, key in columns]),
                )
            ),
            width="100%",
            variant="surface",
        ),
        empty_state(empty),
    )
