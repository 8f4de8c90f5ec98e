from django.apps import AppConfig
from django.contrib.admin.apps import AdminConfig


class GatekeeperConfig(AppConfig):
    """The project package as an app, for what must be connected at start-up."""

    name = "gatekeeper"
    verbose_name = "Gatekeeper"

    def ready(self):
        # Connect their receivers (the sign-in audit, the session renewal at login) and
        # register the deploy checks.
        from gatekeeper import auth_audit, checks, security  # noqa: F401


class GatekeeperAdminConfig(AdminConfig):
    """django.contrib.admin with our site (gatekeeper.admin_site) as `admin.site`."""

    default_site = "gatekeeper.admin_site.GatekeeperAdminSite"
