from django.apps import AppConfig


class ApprovalsConfig(AppConfig):
    name = "approvals"
    verbose_name = "Approvals"

    def ready(self):
        # Every process that may queue a task (web, shell, commands) must publish through
        # Gatekeeper's Celery app and its broker, not Celery's default app (amqp://localhost).
        # Not imported from gatekeeper/__init__.py: manage.py's bootstrap imports that package
        # under any python3, before the virtualenv (and Celery) exists.
        import gatekeeper.celery  # noqa: F401

        # audit never imports approvals: what it needs to know of approvals is registered here.
        from approvals import events, tasks  # noqa: F401
        from approvals.channels import email, webhook  # noqa: F401  (each registers itself)
        from approvals.models import Execution
        from approvals.services import checkpoints
        from audit import checkpoint, execution_table

        events.register()
        execution_table.register(Execution._meta.db_table)
        checkpoint.register_sink(checkpoints.WEBHOOK)

        from approvals import policy_groups

        policy_groups.connect()
