"""manage.py create_service_account NAME [--callback-url URL] [--expires-in-days N]: an
orchestrator's API identity."""

from datetime import timedelta

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import URLValidator, validate_slug
from django.db import IntegrityError
from django.utils import timezone

from approvals.models import ServiceAccount
from approvals.services.service_accounts import service_account_create
from gatekeeper.outbound import url_problem

# A hundred years: beyond that a date is surely a typo, and "never" is the default anyway.
MAX_EXPIRY_DAYS = 36500


class Command(BaseCommand):
    help = "Create a service account and print its token (and webhook secret) once."

    def add_arguments(self, parser):
        parser.add_argument("name", help="A slug: letters, digits, - or _")
        parser.add_argument("--callback-url", default="", help="Where its webhooks are posted")
        parser.add_argument(
            "--expires-in-days",
            type=int,
            default=None,
            help="The token stops working after this many days (default: never)",
        )

    def handle(self, *args, name, callback_url, expires_in_days, **options):
        problems = _problems(name, callback_url)
        if expires_in_days is not None and not 1 <= expires_in_days <= MAX_EXPIRY_DAYS:
            problems.append(f"--expires-in-days must be 1 to {MAX_EXPIRY_DAYS}")
        if problems:
            raise CommandError("\n".join(problems))
        expires_at = timezone.now() + timedelta(days=expires_in_days) if expires_in_days else None
        try:
            account, token = service_account_create(
                name=name, callback_url=callback_url, token_expires_at=expires_at
            )
        except IntegrityError as error:
            # Another process created the same name since the check above.
            raise CommandError(f"a service account named {name!r} already exists") from error
        # A shell comment, then key=value lines: a script can grep them, or eval the whole output.
        self.stdout.write(
            f"# Created service account {account.name}. "
            "Store the values below now: they are shown only once."
        )
        if expires_at is not None:
            self.stdout.write(f"# The token expires at {expires_at:%Y-%m-%d %H:%M:%S %Z}.")
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
        else:
            if (problem := url_problem(callback_url)) is not None:
                problems.append(f"--callback-url {callback_url!r} {problem}")
        if len(callback_url) > max_url:
            problems.append(f"--callback-url must be at most {max_url} characters")
    if not problems and ServiceAccount.objects.filter(name=name).exists():
        problems.append(f"a service account named {name!r} already exists")
    return problems
