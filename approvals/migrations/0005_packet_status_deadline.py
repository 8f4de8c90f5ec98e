"""An index for the queue's capped status counts (approvals.selectors.queue._count_by_status).

CONCURRENTLY: a plain CREATE INDEX would hold every gate check and decision that writes a
packet for as long as the build takes on a large table.
"""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("approvals", "0004_drop_redundant_packet_indexes")]

    operations = [
        AddIndexConcurrently(
            model_name="pausepacket",
            index=models.Index(
                fields=["status", "expires_at"], include=["id"], name="packet_status_deadline"
            ),
        ),
    ]
