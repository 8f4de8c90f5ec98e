from django.apps import AppConfig


class GatekeeperConfig(AppConfig):
    """The project package as an app, for what must be connected at start-up."""

    name = "gatekeeper"
    verbose_name = "Gatekeeper"

    def ready(self):
        # Connect their receivers: the sign-in audit, and the session renewal at login.
        from gatekeeper import auth_audit, security  # noqa: F401
