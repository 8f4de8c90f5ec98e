from functools import partial

from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.decorators.csp import csp_override
from django.views.generic import RedirectView
from ninja.openapi.views import openapi_view

from approvals.api.endpoints import api
from gatekeeper.login import LoginView

# Swagger UI (ninja's bundled copy, served from our static files) draws its icons as data: SVG
# images from its stylesheet; everything else on the page already keeps to the site's policy.
# So the docs page adds data: images and nothing more: no inline script, no other origin.
API_DOCS_CSP = {**settings.SECURE_CSP, "img-src": [*settings.SECURE_CSP["img-src"], "data:"]}

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="approvals:queue", permanent=False)),
    path("", include("approvals.urls")),
    path("", include("audit.urls")),
    path("metrics/", include("approvals.metrics.urls")),
    path("accounts/login/", LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    # One door for passwords: the admin's own login form would be a second one to throttle.
    path(
        "admin/login/",
        RedirectView.as_view(pattern_name="login", query_string=True, permanent=False),
    ),
    path("admin/", admin.site.urls),
    # Ahead of api.urls, which serves the same page under the site's policy.
    path("api/v1/docs", csp_override(API_DOCS_CSP)(partial(openapi_view, api=api))),
    path("api/v1/", api.urls),
]
