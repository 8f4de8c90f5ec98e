"""manage.py import_policies FILE: create or update policies by name from a JSON list."""

import getpass
import json

from django.core.management.base import BaseCommand, CommandError

from approvals.errors import ValidationFailed
from approvals.services.policies import policies_import


class Command(BaseCommand):
    help = "Import a JSON list of policies, whole or not at all (DESIGN section 2)."

    def add_arguments(self, parser):
        parser.add_argument("file", help="A JSON file holding a list of policies")

    def handle(self, *args, file, **options):
        documents = _read(file)
        try:
            counts = policies_import(documents=documents, actor=_actor())
        except ValidationFailed as error:
            lines = [f"{file} was refused; nothing was imported. Fix these and try again:"]
            for problem in error.details["errors"]:
                where = (
                    f"entry {problem['entry']}, field {problem['field']}: "
                    if problem["entry"]
                    else ""
                )
                lines.append(f"  {where}{problem['message']}")
            raise CommandError("\n".join(lines)) from error
        self.stdout.write(
            f"created={counts['created']} updated={counts['updated']} "
            f"unchanged={counts['unchanged']}"
        )


def _read(file: str):
    try:
        with open(file, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as error:
        raise CommandError(f"cannot read {file}: {error.strerror}") from error
    except UnicodeDecodeError as error:
        raise CommandError(f"{file} is not UTF-8 text") from error
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as error:
        raise CommandError(
            f"{file} is not JSON: {error.msg} at line {error.lineno} column {error.colno}"
        ) from error
    except ValueError as error:
        raise CommandError(f"{file} is not JSON: {error}") from error
    except RecursionError as error:
        raise CommandError(f"{file} is nested too deeply to be a policy file") from error


def _refuse_constant(name: str):
    # Python's json accepts NaN and Infinity; jsonb and the audit chain do not.
    raise ValueError(f"{name} is not a JSON value")


def _actor() -> str:
    # The audit event names who ran the import; containers may have no login name to give
    # (Python 3.12 raises KeyError for that, 3.13 OSError).
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"
