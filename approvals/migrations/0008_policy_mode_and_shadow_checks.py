"""Policy mode (enforce or shadow) and, on each gate check, what the shadow policies would have
answered (DESIGN section 2). Existing policies stay enforced; existing checks have no shadows."""

from django.db import migrations, models

# Partial: checks made while no shadow policy was enabled (null) add nothing to the index.
_SHADOW_INDEX = (
    "CREATE INDEX gate_check_shadow ON approvals_gatecheck"
    " USING gin (shadow jsonb_path_ops) WHERE shadow IS NOT NULL"
)


class Migration(migrations.Migration):
    dependencies = [
        ("approvals", "0007_owner_grants_view_only"),
    ]

    operations = [
        migrations.AddField(
            model_name="policy",
            name="mode",
            field=models.CharField(
                choices=[
                    ("enforce", "enforce (decides gate checks)"),
                    ("shadow", "shadow (evaluated on every check, never decides)"),
                ],
                default="enforce",
                max_length=10,
            ),
        ),
        migrations.AddField(
            model_name="gatecheck",
            name="shadow",
            field=models.JSONField(blank=True, null=True),
        ),
        migrations.RunSQL(_SHADOW_INDEX, "DROP INDEX gate_check_shadow"),
    ]
