"""manage.py create_service_account NAME [--callback-url URL]: an orchestrator's API identity."""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import URLValidator, validate_slug
from django.db import IntegrityError

from approvals.models import ServiceAccount
from approvals.services.service_accounts import service_account_create


class Command(BaseCommand):
    help = "Create a service account and print its token (and webhook secret) once."

    def add_arguments(self, parser):
        parser.add_argument("name", help="A slug: letters, digits, - or _")
        parser.add_argument("--callback-url", default="", help="Where its webhooks are posted")

    def handle(self, *args, name, callback_url, **options):
        problems = _problems(name, callback_url)
        if problems:
            raise CommandError("\n".join(problems))
        try:
            account, token = service_account_create(name=name, callback_url=callback_url)
        except IntegrityError as error:
            # Another process created the same name since the check above.
            raise CommandError(f"a service account named {name!r} already exists") from error
        # A shell comment, then key=value lines: a script can grep them, or eval the whole output.
        self.stdout.write(
            f"# Created service account {account.name}. "
            "Store the values below now: they are shown only once."
        )
        self.stdout.write(f"token={token}")
        if account.webhook_secret:
            self.stdout.write(f"webhook_secret={account.webhook_secret}")


def _problems(name: str, callback_url: str) -> list[str]:
    problems = []
    max_name = ServiceAccount._meta.get_field("name").max_length
    try:
        validate_slug(name)
    except ValidationError:
        problems.append(f"name {name!r} must be a slug: letters, digits, - or _")
    if len(name) > max_name:
        problems.append(f"name must be at most {max_name} characters")
    if callback_url:
        max_url = ServiceAccount._meta.get_field("callback_url").max_length
        try:
            URLValidator(schemes=["http", "https"])(callback_url)
        except ValidationError:
            problems.append(f"--callback-url {callback_url!r} must be an http or https URL")
        if len(callback_url) > max_url:
            problems.append(f"--callback-url must be at most {max_url} characters")
    if not problems and ServiceAccount.objects.filter(name=name).exists():
        problems.append(f"a service account named {name!r} already exists")
    return problems
