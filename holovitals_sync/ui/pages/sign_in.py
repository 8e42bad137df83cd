"""The sign-in page: the only page a visitor without a session can open."""

from __future__ import annotations

import reflex as rx

from ..state.sign_in import SignInState


def sign_in() -> rx.Component:
    return rx.center(
        rx.card(
            rx.form(
                rx.vstack(
                    rx.hstack(
                        rx.icon("heart-pulse", size=26, color=rx.color("accent", 10)),
                        rx.heading("HoloVitals Sync", size="5"),
                        align="center",
                    ),
                    rx.text("Sign in to the integration console", size="2", color_scheme="gray"),
                    rx.input(
                        placeholder="Username",
                        name="username",
                        id="signin-username",
                        auto_focus=True,
                        width="100%",
                    ),  # fmt: skip
                    rx.input(
                        placeholder="Password",
                        name="password",
                        id="signin-password",
                        type="password",
                        width="100%",
                    ),  # fmt: skip
                    rx.cond(
                        SignInState.error != "",
                        rx.callout(
                            SignInState.error,
                            icon="triangle-alert",
                            color_scheme="red",
                            id="signin-error",
                            width="100%",
                        ),  # fmt: skip
                    ),
                    rx.button(
                        "Sign in",
                        type="submit",
                        id="signin-submit",
                        width="100%",
                        loading=SignInState.busy,
                    ),  # fmt: skip
                    spacing="3",
                    width="100%",
                ),
                on_submit=SignInState.submit,
                reset_on_submit=False,
            ),
            width="22em",
            size="3",
        ),
        min_height="100vh",
        background_color=rx.color("gray", 2),
    )
