"""Drop the pause packet's own indexes on its three foreign keys (see PausePacket in models.py).

Every expiry rewrites each index of the row, so an index nobody reads is pure cost to the sweep:
execution_id is the prefix of packet_step, and nothing looks packets up by gate check or by
requesting account. Only the indexes go: left to itself, AlterField would also drop and re-add
each foreign key, re-checking every packet under an exclusive lock of the table.
"""

from django.db import migrations, models

# Field, the model it points to, its related_name, and the index Django gave it in 0001 (named
# by a hash of table and column, so the same on every database).
FOREIGN_KEYS = [
    ("execution", "approvals.execution", "packets", "approvals_pausepacket_execution_id_81bdd725"),
    (
        "gate_check",
        "approvals.gatecheck",
        "packets",
        "approvals_pausepacket_gate_check_id_8ceba8e0",
    ),
    (
        "requested_by",
        "approvals.serviceaccount",
        None,
        "approvals_pausepacket_requested_by_id_1584e3eb",
    ),
]


class Migration(migrations.Migration):
    dependencies = [
        ("approvals", "0003_service_account_token_expiry"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    f'DROP INDEX "{index}"',
                    f'CREATE INDEX "{index}" ON "approvals_pausepacket" ("{name}_id")',
                )
                for name, _, _, index in FOREIGN_KEYS
            ],
            state_operations=[
                migrations.AlterField(
                    model_name="pausepacket",
                    name=name,
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=models.PROTECT,
                        related_name=related_name,
                        to=to,
                    ),
                )
                for name, to, related_name, _ in FOREIGN_KEYS
            ],
        ),
    ]
