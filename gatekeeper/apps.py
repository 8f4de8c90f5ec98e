from django.apps import AppConfig


class GatekeeperConfig(AppConfig):
    """The project package as an app, for what must be connected at start-up."""

    name = "gatekeeper"
    verbose_name = "Gatekeeper"

    def ready(self):
        # Connect their receivers (the sign-in audit, the session renewal at login) and
        # register the deploy checks.
        from gatekeeper import auth_audit, checks, security  # noqa: F401
