from django.urls import path

from approvals.metrics import views

app_name = "metrics"

urlpatterns = [
    path("", views.sla, name="sla"),
    # No trailing slash: the path goes into Prometheus' scrape config as it is.
    path("prometheus", views.prometheus, name="prometheus"),
]
