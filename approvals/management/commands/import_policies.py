"""manage.py import_policies FILE: create or update policies by name from a JSON list."""

import getpass

from django.core.management.base import BaseCommand

from approvals.errors import ValidationFailed
from approvals.management.policy_files import read_policy_file, refusal
from approvals.services.policies import policies_import


class Command(BaseCommand):
    help = "Import a JSON list of policies, whole or not at all (DESIGN section 2)."

    def add_arguments(self, parser):
        parser.add_argument("file", help="A JSON file holding a list of policies")

    def handle(self, *args, file, **options):
        documents = read_policy_file(file)
        try:
            counts = policies_import(documents=documents, actor=_actor())
        except ValidationFailed as error:
            raise refusal(
                f"{file} was refused; nothing was imported. Fix these and try again:",
                error.details["errors"],
            ) from error
        self.stdout.write(
            f"created={counts['created']} updated={counts['updated']} "
            f"unchanged={counts['unchanged']}"
        )


def _actor() -> str:
    # The audit event names who ran the import; containers may have no login name to give
    # (Python 3.12 raises KeyError for that, 3.13 OSError).
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"
