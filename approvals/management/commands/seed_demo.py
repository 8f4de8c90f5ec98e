from django.core.management.base import BaseCommand, CommandError

from approvals.demo import DEMO_PASSWORD, SERVICE_ACCOUNT, DemoSeedFailed, SeedResult, demo_seed


class Command(BaseCommand):
    help = (
        "Create demo roles, users, policies, a service account and executions whose approvals "
        "sit in every state. Safe to run again: what exists is left alone."
    )

    def handle(self, *args, **options):
        try:
            result = demo_seed()
        except DemoSeedFailed as error:
            raise CommandError(f"{error} (nothing was written)") from error
        report_seed(self.stdout, result)


def report_seed(out, result: SeedResult) -> None:
    """The summary both seed_demo and demo print."""
    if result.users_created:
        out.write(f"Users created: {', '.join(result.users_created)} (password {DEMO_PASSWORD})")
    if result.users_existing:
        out.write(f"Users already present, left as they are: {', '.join(result.users_existing)}")
    out.write(
        f"Policies: {len(result.policies_created)} created, "
        f"{len(result.policies_existing)} already present"
    )
    out.write(
        f"Executions: {len(result.executions_created)} created, "
        f"{len(result.executions_existing)} already present"
        + (f"; {result.expired} overdue approvals expired" if result.expired else "")
    )
    if result.token:
        out.write(f"Service account {SERVICE_ACCOUNT} created; its token, shown only now:")
        out.write(f"token={result.token}")
    else:
        out.write(f"Service account {SERVICE_ACCOUNT} already present (its token is not stored)")
