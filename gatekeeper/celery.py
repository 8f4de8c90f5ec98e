"""The Celery application. Tasks and the broker settings grow with the background-work issue."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gatekeeper.settings")

app = Celery("gatekeeper")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_acks_late = True
app.autodiscover_tasks()
