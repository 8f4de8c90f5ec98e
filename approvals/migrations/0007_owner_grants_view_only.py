"""Take back resume_pausepacket where a packet's only reason to give it was ownership.

Until now every packet gave the execution's owner (a group, or `user:<name>`) both packet
permissions, so owning an execution let a team approve what a policy routed to another
(issue 13). The owner keeps view_pausepacket; resume_pausepacket is deleted where it exists
only because of ownership. Grants were never labelled with their reason, so the reason is read
from what the packet stores. A resume grant is removed when all of these hold:

- its principal is the packet's owner snapshot (`owner`: what the grant was made to when the
  packet opened; a later owner change gave no grant on this packet);
- that principal is not the packet's route: a group grant whose group is the packet's
  `approvers` stays (owner and approvers were the same group, which is the default when the
  orchestrator names no owner);
- escalation did not give it: a group grant whose group is `escalate_to` stays once the packet
  was escalated (`escalated_at` set);
- no admin delegated it: the packet's admin history (django_admin_log, written by the packet
  admin's permission pages as "Object permissions of group|user NAME: ...") never gave that
  principal resume_pausepacket.

Any other resume grant (delegated, or made by the route or escalation) is left alone. The
reverse does nothing: going back to the old code does not need the hole back.
"""

from django.db import migrations

# Each statement joins the grant to its packet, its principal and the packet permission
# resume_pausepacket (ct), and looks in the admin history for a delegation to that principal.
_GROUP_GRANTS = """
DELETE FROM approvals_pausepacketgroupobjectpermission grant_
 USING approvals_pausepacket packet, auth_group principal, auth_permission perm,
       django_content_type ct
 WHERE grant_.content_object_id = packet.id
   AND grant_.group_id = principal.id
   AND grant_.permission_id = perm.id AND perm.codename = 'resume_pausepacket'
   AND perm.content_type_id = ct.id AND ct.app_label = 'approvals' AND ct.model = 'pausepacket'
   AND principal.name = packet.owner
   AND principal.name <> packet.approvers
   AND NOT (packet.escalated_at IS NOT NULL AND principal.name = packet.escalate_to)
   AND NOT EXISTS (
       SELECT FROM django_admin_log log
        WHERE log.content_type_id = ct.id AND log.object_id = packet.id::text
          AND starts_with(log.change_message,
                          'Object permissions of group ' || principal.name || ': ')
          AND substr(log.change_message,
                     length('Object permissions of group ' || principal.name || ': ') + 1)
              LIKE '%resume_pausepacket%')
"""
_USER_GRANTS = """
DELETE FROM approvals_pausepacketuserobjectpermission grant_
 USING approvals_pausepacket packet, auth_user principal, auth_permission perm,
       django_content_type ct
 WHERE grant_.content_object_id = packet.id
   AND grant_.user_id = principal.id
   AND grant_.permission_id = perm.id AND perm.codename = 'resume_pausepacket'
   AND perm.content_type_id = ct.id AND ct.app_label = 'approvals' AND ct.model = 'pausepacket'
   AND packet.owner = 'user:' || principal.username
   AND NOT EXISTS (
       SELECT FROM django_admin_log log
        WHERE log.content_type_id = ct.id AND log.object_id = packet.id::text
          AND starts_with(log.change_message,
                          'Object permissions of user ' || principal.username || ': ')
          AND substr(log.change_message,
                     length('Object permissions of user ' || principal.username || ': ') + 1)
              LIKE '%resume_pausepacket%')
"""


class Migration(migrations.Migration):
    dependencies = [
        ("approvals", "0006_packet_callback"),
        ("admin", "0003_logentry_add_action_flag_choices"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [
        migrations.RunSQL(_GROUP_GRANTS, reverse_sql=migrations.RunSQL.noop),
        migrations.RunSQL(_USER_GRANTS, reverse_sql=migrations.RunSQL.noop),
    ]
