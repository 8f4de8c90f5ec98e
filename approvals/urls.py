from django.urls import path

from approvals import views

app_name = "approvals"

urlpatterns = [
    path("approvals/", views.queue, name="queue"),
    path("approvals/open-count/", views.open_count, name="open_count"),
    path("approvals/events/", views.events, name="events"),
    path("approvals/<uuid:packet_id>/", views.packet_detail, name="packet"),
    path("approvals/<uuid:packet_id>/approve/", views.approve, name="approve"),
    path("approvals/<uuid:packet_id>/reject/", views.reject, name="reject"),
    path("approvals/<uuid:packet_id>/reconcile/", views.reconcile, name="reconcile"),
    path("approvals/<uuid:packet_id>/takeover/", views.take_over, name="takeover"),
    path("approvals/<uuid:packet_id>/comment/", views.comment, name="comment"),
    path("executions/<uuid:execution_id>/", views.execution_timeline, name="execution"),
]
