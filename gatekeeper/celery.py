"""The Celery application: one worker kind, one beat, settings from the environment.

With CELERY_BROKER_URL unset, messages go through kombu's filesystem transport under
`.data/celery`, which needs no server; set a redis:// or amqp:// URL for real deployments.
"""

import os

from celery import Celery

from gatekeeper.startup import start

start()

app = Celery("gatekeeper", task_cls="celery.contrib.django.task:DjangoTask")
app.config_from_object("django.conf:settings", namespace="CELERY")
for option in ("data_folder_in", "processed_folder", "control_folder"):
    folder = app.conf.broker_transport_options.get(option)
    if folder:  # the filesystem transport expects its folders to exist
        os.makedirs(folder, exist_ok=True)
app.autodiscover_tasks()
