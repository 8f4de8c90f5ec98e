"""manage.py verify_audit [--from-seq N] [--to-seq M] [--expect-head HASH | --expect-head-file
FILE]: recompute the decision record's chain, and check that it still holds a checkpoint."""

import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from audit.checkpoint import Checkpoint, current_head, parse_checkpoint
from audit.verify import ChainReport, hash_at, verify_chain


class Command(BaseCommand):
    help = (
        "Recompute the audit hash chain; exit non-zero at the first bad row, or when the "
        "record no longer holds the expected head (a checkpoint)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--from-seq", type=int, help="First seq to check (default: the first)")
        parser.add_argument("--to-seq", type=int, help="Last seq to check (default: the head)")
        expected = parser.add_mutually_exclusive_group()
        expected.add_argument(
            "--expect-head",
            metavar="HASH",
            help="The hash the record's head (or the --to-seq row) must have",
        )
        expected.add_argument(
            "--expect-head-file",
            metavar="FILE",
            help="A checkpoint (seq=<N> hash=<hex>, its log line or its webhook body): the row "
            "at that seq must still have that hash; rows appended since extend it",
        )

    def handle(self, *args, from_seq, to_seq, expect_head, expect_head_file, **options):
        if from_seq is not None and to_seq is not None and from_seq > to_seq:
            raise CommandError(f"--from-seq {from_seq} is after --to-seq {to_seq}")
        expected = _expected(expect_head, expect_head_file)
        if expected is not None and None not in (expected.seq, to_seq) and expected.seq > to_seq:
            raise CommandError(f"the checkpoint's seq {expected.seq} is after --to-seq {to_seq}")
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
        if expected is not None:
            self.stdout.write(_holds(expected, report))
        self.stdout.write(f"head={report.head_hash}")


def _expected(expect_head: str | None, expect_head_file: str | None) -> Checkpoint | None:
    if expect_head is not None:
        source, text = "--expect-head", expect_head
    elif expect_head_file is not None:
        source = f"--expect-head-file {expect_head_file}"
        try:
            text = Path(expect_head_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise CommandError(f"{source} cannot be read: {error}") from None
    else:
        return None
    try:
        expected = parse_checkpoint(text)
    except ValueError as problem:
        raise CommandError(f"{source} {problem}") from None
    if expect_head is not None and expected.seq is not None:
        raise CommandError("--expect-head takes a hash; a seq and hash go in --expect-head-file")
    return expected


def _holds(expected: Checkpoint, report: ChainReport) -> str:
    """What matched, or CommandError naming what the record lost."""
    if expected.seq is None:
        if report.head_hash != expected.hash:
            raise CommandError(
                f"the decision record's head is {report.head_hash}, not the expected "
                f"{expected.hash}: rows after it were removed, rows were rewritten, or rows were "
                "appended since (give the checkpoint's seq with --expect-head-file)"
            )
        return "the head is the expected one"
    found = hash_at(expected.seq)
    if found is None:
        raise CommandError(
            f"the decision record has no row {expected.seq}, which the checkpoint names: it "
            f"ends at row {current_head().seq}; rows were removed"
        )
    if found != expected.hash:
        raise CommandError(
            f"row {expected.seq}'s hash is {found}, not the checkpoint's {expected.hash}: the "
            "record was rewritten up to that row"
        )
    return f"the record holds the checkpoint at row {expected.seq} and extends it"
