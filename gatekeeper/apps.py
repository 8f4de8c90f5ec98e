from django.apps import AppConfig


class GatekeeperConfig(AppConfig):
    """The project package as an app, for what must be connected at start-up."""

    name = "gatekeeper"
    verbose_name = "Gatekeeper"

    def ready(self):
        from gatekeeper import auth_audit  # noqa: F401 (connects the sign-in audit receivers)
