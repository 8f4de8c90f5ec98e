"""Reading a policy file for the commands that take one (import_policies, replay_policies)."""

import json

from django.core.management.base import CommandError


def read_policy_file(file: str):
    """The decoded JSON of `file`, or a CommandError saying in one line why not."""
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


def refusal(first_line: str, problems: list[dict]) -> CommandError:
    """A policy file's problems (policy_file_problems), one line each under `first_line`."""
    lines = [first_line]
    for problem in problems:
        where = f"entry {problem['entry']}, field {problem['field']}: " if problem["entry"] else ""
        lines.append(f"  {where}{problem['message']}")
    return CommandError("\n".join(lines))
