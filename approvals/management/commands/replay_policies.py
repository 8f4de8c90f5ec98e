"""manage.py replay_policies FILE [--since DAYS]: what a policy file changes; writes nothing."""

from argparse import ArgumentTypeError

from django.core.management.base import BaseCommand
from django.utils import timezone

from approvals.management.policy_files import read_policy_file, refusal
from approvals.policy_documents import policy_file_problems
from approvals.services.replay import replay, rules_with_documents
from audit.jsontext import visible

DEFAULT_DAYS = 30


def _days(text: str) -> float:
    try:
        days = float(text)
    except ValueError:
        raise ArgumentTypeError(f"takes a number of days, not {text!r}") from None
    if not 0 < days <= 3650:
        raise ArgumentTypeError("takes a number of days above 0, at most 3650")
    return days


class Command(BaseCommand):
    help = (
        "Decide the gate checks recorded in the last DAYS days under the stored policies with "
        "FILE's imported over them (as import_policies would leave them; a policy whose mode "
        "is shadow does not decide), and print how many answers would change, by kind, with "
        "examples. Writes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="A JSON file holding a list of policies")
        parser.add_argument(
            "--since",
            type=_days,
            default=DEFAULT_DAYS,
            metavar="DAYS",
            help=f"Replay the checks of the last DAYS days (default {DEFAULT_DAYS})",
        )

    def handle(self, *args, file, since, **options):
        documents = read_policy_file(file)
        problems = policy_file_problems(documents)
        if problems:
            raise refusal(f"{file} was refused; nothing was replayed. Fix these:", problems)
        report = replay(rules_with_documents(documents), days=since)
        since_text = timezone.localtime(report.since).strftime("%Y-%m-%d %H:%M %Z")
        self.stdout.write(
            f"replayed {report.checks:,} gate checks recorded since {since_text}: "
            f"{report.changed:,} would get another answer"
        )
        for was, now, count, examples in report.by_kind():
            self.stdout.write(f"  {was} -> {now}: {count:,}")
            for example in examples:
                at = timezone.localtime(example.created_at).strftime("%Y-%m-%d %H:%M")
                self.stdout.write(
                    f"    {at} check {example.check_id} workflow {visible(example.workflow)} "
                    f"tool {visible(example.tool)}: {visible(example.reason)}"
                )
        if report.other_policy:
            self.stdout.write(
                f"same answer from another policy: {report.other_policy:,} (not counted above)"
            )
        self.stdout.write("nothing was written")
