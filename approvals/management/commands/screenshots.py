import os
from pathlib import Path
from unittest import mock

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from gatekeeper import bootstrap

TEST = "tests/web/test_docs_screenshots.py"
PICTURES = ("queue.png", "packet.png", "policy-editor.png")


class Command(BaseCommand):
    help = (
        "Retake the README's screenshots (docs/queue.png, docs/packet.png, "
        "docs/policy-editor.png): the demo data in a test database, as a reviewer and an admin "
        "see it in headless Chromium."
    )

    def handle(self, *args, **options):
        docs = Path(settings.BASE_DIR) / "docs"
        before = {name: _modified(docs / name) for name in PICTURES}
        # The test saves where GATEKEEPER_SCREENSHOTS_DIR says; run_tests passes it on to pytest.
        with mock.patch.dict(os.environ, {"GATEKEEPER_SCREENSHOTS_DIR": str(docs)}):
            code = bootstrap.run_tests([TEST, "-q", "-p", "no:cacheprovider"])
        if code:
            raise CommandError(f"the screenshot test failed (exit {code}); see its output above")
        stale = [name for name in PICTURES if _modified(docs / name) == before[name]]
        if stale:
            # A skipped test exits 0 too: old pictures must not pass for new ones.
            raise CommandError(f"not retaken: {', '.join(stale)} (was the browser test skipped?)")
        for name in PICTURES:
            self.stdout.write(f"Wrote docs/{name}")


def _modified(path: Path) -> int | None:
    return path.stat().st_mtime_ns if path.exists() else None
