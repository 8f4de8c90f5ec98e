"""manage.py verify_audit [--from-seq N] [--to-seq M]: recompute the decision record's chain."""

import time

from django.core.management.base import BaseCommand, CommandError

from audit.verify import verify_chain


class Command(BaseCommand):
    help = "Recompute the audit hash chain; exit non-zero at the first bad row."

    def add_arguments(self, parser):
        parser.add_argument("--from-seq", type=int, help="First seq to check (default: the first)")
        parser.add_argument("--to-seq", type=int, help="Last seq to check (default: the head)")

    def handle(self, *args, from_seq, to_seq, **options):
        if from_seq is not None and to_seq is not None and from_seq > to_seq:
            raise CommandError(f"--from-seq {from_seq} is after --to-seq {to_seq}")
        started = time.perf_counter()
        report = verify_chain(from_seq=from_seq, to_seq=to_seq)
        elapsed = time.perf_counter() - started
        rate = report.rows_checked / elapsed if elapsed > 0 else 0
        self.stdout.write(
            f"checked {report.rows_checked} rows in {elapsed:.2f}s ({rate:,.0f} rows/s)"
        )
        if report.first_bad is not None:
            # No head= line on failure: a script must never record a broken chain's head as good.
            raise CommandError(
                f"the decision record is broken at row {report.first_bad.seq}: "
                f"{report.first_bad.problem}"
            )
        self.stdout.write(f"head={report.head_hash}")
