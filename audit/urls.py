from django.urls import path

from audit import views

app_name = "audit"

urlpatterns = [
    path("executions/<uuid:execution_id>/", views.execution_timeline, name="execution"),
    path("audit/", views.audit_browser, name="browser"),
    path("audit/export.csv", views.audit_export, name="export"),
]
