"""manage.py export_policies [--output FILE]: the JSON list that import_policies reads back."""

import json

from django.core.management.base import BaseCommand, CommandError

from approvals.services.policies import policies_export


class Command(BaseCommand):
    help = "Write every policy as a JSON list (to stdout unless --output is given)."

    def add_arguments(self, parser):
        parser.add_argument("--output", help="Write to this file instead of stdout")

    def handle(self, *args, output, **options):
        documents = policies_export()
        text = json.dumps(documents, indent=2, ensure_ascii=False)
        if output is None:
            self.stdout.write(text)
            return
        try:
            with open(output, "w", encoding="utf-8") as handle:
                handle.write(text + "\n")
        except OSError as error:
            raise CommandError(f"cannot write {output}: {error.strerror}") from error
        noun = "policy" if len(documents) == 1 else "policies"
        self.stdout.write(f"exported {len(documents)} {noun} to {output}")
