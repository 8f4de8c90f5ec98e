import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.urls import reverse
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase

from approvals import channel_registry
from approvals.branch_table import Facts
from approvals.group_names import unknown_group_problems


class Decision(models.TextChoices):
    ALLOW = "allow"
    BLOCK = "block"
    REQUIRE_APPROVAL = "require_approval"
    SKIP = "skip"


class SideEffect(models.TextChoices):
    NOT_STARTED = "not_started"
    LANDED = "landed"
    INDETERMINATE = "indeterminate"


class ServiceAccount(models.Model):
    """An orchestrator's identity for the API. The token is shown once and stored hashed."""

    name = models.SlugField(max_length=100, unique=True)
    token_prefix = models.CharField(
        max_length=16, help_text="First characters, to tell tokens apart"
    )
    token_hash = models.CharField(max_length=64, unique=True)
    callback_url = models.URLField(blank=True)
    webhook_secret = models.CharField(max_length=100, blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    token_expires_at = models.DateTimeField(
        null=True, blank=True, help_text="Empty: the token never expires"
    )

    def __str__(self):
        return self.name

    @property
    def actor(self) -> str:
        return f"service:{self.name}"

    def token_expired(self, now) -> bool:
        return self.token_expires_at is not None and now >= self.token_expires_at


class Policy(models.Model):
    """An admin-edited rule mapping gate checks to a decision (DESIGN section 2).

    Settings left empty take the GATEKEEPER_DEFAULT_* values when a packet is made.
    """

    class Effect(models.TextChoices):
        ALLOW = "allow"
        BLOCK = "block"
        REQUIRE_APPROVAL = "require_approval"

    class Mode(models.TextChoices):
        ENFORCE = "enforce", "enforce (decides gate checks)"
        SHADOW = "shadow", "shadow (evaluated on every check, never decides)"

    name = models.SlugField(max_length=100, unique=True)
    priority = models.IntegerField(default=100, help_text="Lower runs first")
    enabled = models.BooleanField(default=True)
    match = models.JSONField(default=dict, blank=True)
    effect = models.CharField(max_length=20, choices=Effect.choices)
    mode = models.CharField(max_length=10, choices=Mode.choices, default=Mode.ENFORCE)
    approvers = models.CharField(max_length=150, blank=True, help_text="Group name")
    escalate_to = models.CharField(max_length=150, blank=True, help_text="Group name")
    required_approvals = models.PositiveSmallIntegerField(null=True, blank=True)
    forbid_self_approval = models.BooleanField(null=True, blank=True)
    allow_edit = models.BooleanField(null=True, blank=True)
    fresh_for_seconds = models.PositiveIntegerField(null=True, blank=True)
    expires_after_seconds = models.PositiveIntegerField(null=True, blank=True)
    remind_before_seconds = models.PositiveIntegerField(null=True, blank=True)
    version = models.PositiveIntegerField(default=1, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["priority", "name"]
        verbose_name_plural = "policies"
        constraints = [
            models.CheckConstraint(
                condition=Q(required_approvals__isnull=True) | Q(required_approvals__gte=1),
                name="policy_required_approvals_positive",
            ),
        ]

    def __str__(self):
        return f"{self.name} v{self.version}"

    def clean(self):
        document = {"name": self.name, "approvers": self.approvers, "escalate_to": self.escalate_to}
        problems = unknown_group_problems([document])
        if problems:
            raise ValidationError({p["field"]: p["message"] for p in problems})


class PolicyVersion(models.Model):
    """Every version a policy has had, as its exported JSON document."""

    policy = models.ForeignKey(Policy, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    document = models.JSONField()
    changed_by = models.CharField(max_length=200)
    changed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["policy", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["policy", "version"], name="policy_version_unique"),
        ]

    def __str__(self):
        return f"{self.policy.name} v{self.version}"


class Execution(models.Model):
    """One run of an agent workflow, named by the orchestrator's thread_id."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    service_account = models.ForeignKey(ServiceAccount, on_delete=models.PROTECT)
    thread_id = models.CharField(max_length=200)
    workflow = models.CharField(max_length=200)
    owner = models.CharField(max_length=200, blank=True)
    owner_changed_at = models.DateTimeField(null=True, blank=True)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["service_account", "thread_id"], name="execution_thread_unique"
            ),
        ]

    def __str__(self):
        return self.thread_id


class GateCheck(models.Model):
    """One question "may step N run?" and the answer given; always recorded."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    service_account = models.ForeignKey(ServiceAccount, on_delete=models.PROTECT)
    execution = models.ForeignKey(Execution, on_delete=models.PROTECT, related_name="gate_checks")
    idempotency_key = models.CharField(max_length=200)
    request_hash = models.CharField(max_length=64)
    request = models.JSONField()
    step_index = models.PositiveIntegerField()
    step_name = models.CharField(max_length=200)
    tool = models.CharField(max_length=200)
    side_effect = models.CharField(max_length=20, choices=SideEffect.choices)
    decision = models.CharField(max_length=20, choices=Decision.choices)
    reason = models.TextField()
    policy_name = models.CharField(max_length=100, blank=True)
    policy_version = models.PositiveIntegerField(null=True, blank=True)
    response = models.JSONField(null=True, blank=True)
    # What each shadow policy would have answered (policy_rules.ShadowOutcome.as_json), written
    # by the check's own INSERT; null when no shadow policy was enabled.
    shadow = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["service_account", "idempotency_key"], name="gate_check_idempotency_unique"
            ),
        ]
        # Migration 0008 also makes gate_check_shadow, a partial GIN index (jsonb_path_ops) on
        # shadow: "which checks would shadow policy P have answered differently" is a
        # containment test. Declared here it would need django.contrib.postgres installed.
        indexes = [models.Index(fields=["execution", "step_index"], name="gate_check_step")]

    def __str__(self):
        return f"{self.execution_id} step {self.step_index}: {self.decision}"


class PacketStatus(models.TextChoices):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"
    RE_REVIEW = "re_review"
    RECONCILING = "reconciling"
    APPLIED = "applied"
    TERMINATED = "terminated"
    SUPERSEDED = "superseded"


# A list, as the constraints and indexes below were written (their migrations compare equal).
OPEN_STATUSES = [PacketStatus.PENDING, PacketStatus.RE_REVIEW, PacketStatus.RECONCILING]


def sql_list(values) -> str:
    """Enum values as an SQL list of literals, for statements written as text (never input)."""
    return ", ".join(f"'{value}'" for value in values)


class PausePacket(models.Model):
    """What a reviewer decides on (DESIGN section 3)."""

    Status = PacketStatus

    class Branch(models.TextChoices):
        RESUME = "resume"
        RE_REVIEW = "re_review"
        RECONCILE = "reconcile"
        TERMINATE = "terminate"

    OPEN_STATUSES = tuple(OPEN_STATUSES)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # The foreign keys have no index of their own: every expiry writes each index of the row,
    # and these would serve no query. execution_id leads packet_step, which serves every lookup
    # by execution; nothing looks packets up by gate check or requesting account, and those rows
    # are never deleted (PROTECT, no delete in the admin), so no delete searches packets either.
    execution = models.ForeignKey(
        Execution, on_delete=models.PROTECT, related_name="packets", db_index=False
    )
    gate_check = models.ForeignKey(
        GateCheck, on_delete=models.PROTECT, related_name="packets", db_index=False
    )
    step_index = models.PositiveIntegerField()
    step_name = models.CharField(max_length=200)
    # The pending action: the exact next write.
    tool = models.CharField(max_length=200)
    args = models.JSONField(default=dict)
    side_effect = models.CharField(max_length=20, choices=SideEffect.choices)
    context = models.JSONField(default=list)
    # The caller's own routing data (DESIGN 6: `callback`), echoed in every answer and webhook,
    # never interpreted.
    callback = models.JSONField(null=True, blank=True)
    # Who may resume, as it was when the packet was made.
    owner = models.CharField(max_length=200)
    workflow = models.CharField(max_length=200)
    approvers = models.CharField(max_length=150)
    escalate_to = models.CharField(max_length=150, blank=True)
    requested_by = models.ForeignKey(ServiceAccount, on_delete=models.PROTECT, db_index=False)
    on_behalf_of = models.CharField(max_length=150, blank=True)
    # Why a human was asked, and the rules the packet was made under.
    policy_name = models.CharField(max_length=100, blank=True)
    policy_version = models.PositiveIntegerField(null=True, blank=True)
    reason = models.TextField()
    required_approvals = models.PositiveSmallIntegerField(default=1)
    forbid_self_approval = models.BooleanField(default=True)
    allow_edit = models.BooleanField(default=False)
    fresh_for_seconds = models.PositiveIntegerField()
    expires_after_seconds = models.PositiveIntegerField()
    remind_before_seconds = models.PositiveIntegerField()
    created_at = models.DateTimeField()
    fresh_until = models.DateTimeField()
    expires_at = models.DateTimeField()
    snapshot_hash = models.CharField(max_length=64)
    # The outcome.
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    # null, not "": DESIGN section 4 gives branch and decision as JSON null until they are set.
    branch = models.CharField(max_length=20, choices=Branch.choices, null=True, blank=True)  # noqa: DJ001
    decision = models.CharField(max_length=20, choices=Decision.choices, null=True, blank=True)  # noqa: DJ001
    decided_by = models.JSONField(default=list, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    comment = models.TextField(blank=True)
    edited_args = models.JSONField(null=True, blank=True)
    superseded_by = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="supersedes"
    )
    reminded_at = models.DateTimeField(null=True, blank=True)
    escalated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["expires_at"]
        permissions = [("resume_pausepacket", "Can approve, reject and resume this packet")]
        constraints = [
            models.UniqueConstraint(
                fields=["execution", "step_index"],
                condition=Q(status__in=OPEN_STATUSES),
                name="packet_one_open_per_step",
            ),
            models.CheckConstraint(
                condition=Q(expires_at__gte=models.F("created_at")),
                name="packet_expiry_after_creation",
            ),
        ]
        indexes = [
            models.Index(
                fields=["expires_at"],
                condition=Q(status__in=OPEN_STATUSES),
                name="packet_open_by_deadline",
            ),
            models.Index(fields=["execution", "step_index"], name="packet_step"),
            # The queue's status tabs count each status up to a cap (approvals.selectors.queue):
            # with id in the index, each count is an index-only scan that stops at the cap,
            # however rare the status or long the history.
            models.Index(
                fields=["status", "expires_at"], include=["id"], name="packet_status_deadline"
            ),
        ]

    def __str__(self):
        return f"{self.execution.thread_id} step {self.step_index} ({self.status})"

    def get_absolute_url(self):
        return reverse("approvals:packet", args=[self.id])

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN_STATUSES

    def facts(self, *, now, votes_with_this_one: int = 0) -> Facts:
        """What the branch table decides on, as this packet stands at `now`."""
        return Facts(
            now=now,
            expires_at=self.expires_at,
            fresh_until=self.fresh_until,
            owner_changed=self.owner != self.execution.owner,
            side_effect=self.side_effect,
            votes_with_this_one=votes_with_this_one,
            required_approvals=self.required_approvals,
        )

    @property
    def effective_args(self) -> dict:
        return self.args if self.edited_args is None else self.edited_args

    def current_votes(self):
        """Approvals on the current snapshot, oldest first: an edit voids the earlier ones."""
        return self.votes.filter(snapshot_hash=self.snapshot_hash).order_by("created_at")


class Vote(models.Model):
    """An approval counted toward quorum; only votes on the current snapshot count."""

    packet = models.ForeignKey(PausePacket, on_delete=models.CASCADE, related_name="votes")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    snapshot_hash = models.CharField(max_length=64)
    comment = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["packet", "user", "snapshot_hash"], name="vote_once_per_snapshot"
            ),
        ]

    def __str__(self):
        return f"{self.user} approves {self.packet_id}"


class StepOutcome(models.Model):
    """What the orchestrator (or a reconciling reviewer) reported about a step's write."""

    class Result(models.TextChoices):
        LANDED = "landed"
        NOT_LANDED = "not_landed"
        INDETERMINATE = "indeterminate"
        FAILED = "failed"

    execution = models.ForeignKey(Execution, on_delete=models.PROTECT, related_name="outcomes")
    step_index = models.PositiveIntegerField()
    side_effect = models.CharField(max_length=20, choices=Result.choices)
    detail = models.JSONField(default=dict, blank=True)
    gated = models.BooleanField()
    reported_by = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]
        indexes = [models.Index(fields=["execution", "step_index"], name="outcome_step")]

    def __str__(self):
        return f"{self.execution_id} step {self.step_index}: {self.side_effect}"


class PausePacketUserObjectPermission(UserObjectPermissionBase):
    """Guardian's direct-foreign-key table: joins stay indexed and typed."""

    content_object = models.ForeignKey(PausePacket, on_delete=models.CASCADE)


class PausePacketGroupObjectPermission(GroupObjectPermissionBase):
    content_object = models.ForeignKey(PausePacket, on_delete=models.CASCADE)


class OutboxStatus(models.TextChoices):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed", "failed (gave up)"
    UNDELIVERABLE = "undeliverable"


class OutboxMessage(models.Model):
    """A side effect (an email, a webhook) written in the transaction of the change it reports.

    Delivered after commit by a Celery task that claims the row with a conditional update, so a
    redelivered task never sends twice; a periodic re-drive delivers whatever was left behind.
    """

    Status = OutboxStatus

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # The channel (approvals/channels/) that delivers it.
    kind = models.CharField(max_length=10, choices=channel_registry.choices)
    topic = models.CharField(max_length=40, help_text="new_packet, reminder, approval.decided, ...")
    packet = models.ForeignKey(
        PausePacket, null=True, blank=True, on_delete=models.SET_NULL, related_name="outbox"
    )
    service_account = models.ForeignKey(
        ServiceAccount, null=True, blank=True, on_delete=models.CASCADE, related_name="deliveries"
    )
    recipient = models.CharField(max_length=1000, help_text="an email address or a callback URL")
    username = models.CharField(max_length=150, blank=True)
    payload = models.JSONField(default=dict)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    lease_until = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status__in=[OutboxStatus.PENDING, OutboxStatus.SENDING]),
                name="outbox_due",
            ),
        ]

    def __str__(self):
        return f"{self.kind} {self.topic} to {self.recipient} ({self.status})"
