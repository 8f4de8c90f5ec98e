"""The hash column loses its two indexes: nothing reads by them, and they cost every append most.

`unique=True` gave it a unique B-tree and, on PostgreSQL, a varchar_pattern_ops copy for LIKE.
Each row's hash is a random 64-character key, so every event inserted at a random leaf of two
B-trees as large as the record itself (bench/PROFILES.md: the sweep's dearest writes). Nothing
looks a row up by its hash; verify_audit recomputes and links the chain in seq order, so the
uniqueness guarded nothing the chain does not already prove. Dropping an index takes a brief
exclusive lock and no table scan.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("audit", "0004_chain_aggregate")]

    operations = [
        migrations.AlterField(
            model_name="auditevent",
            name="hash",
            field=models.CharField(max_length=64),
        ),
    ]
