"""import_policies and export_policies: all of a file or none of it, and a lossless round trip."""

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from approvals.events import EventKind
from approvals.models import Policy, PolicyVersion
from audit.models import AuditEvent
from tests.conftest import groups_named_by

PRIVILEGED = {
    "name": "privileged-iam",
    "priority": 10,
    "enabled": True,
    "match": {
        "workflow": "hr-*",
        "tool": "iam.*",
        "min_risk": 0.5,
        "labels_any": ["privilege"],
        "conditions": [{"path": "amount", "op": "gt", "value": 10000}],
    },
    "effect": "require_approval",
    "approvers": "it-approvers",
    "escalate_to": "it-leads",
    "required_approvals": 2,
    "forbid_self_approval": True,
    "allow_edit": True,
    "fresh_for_seconds": 3600,
    "expires_after_seconds": 86400,
    "remind_before_seconds": 1800,
}
READS = {"name": "reads", "priority": 50, "match": {"tool": "*.read"}, "effect": "allow"}


@pytest.fixture(autouse=True)
def route_groups(db):
    """The groups PRIVILEGED routes to: a policy may name only existing groups."""
    groups_named_by(PRIVILEGED)


def _write(tmp_path, content, name="policies.json"):
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content), encoding="utf-8")
    return str(path)


def _import(path) -> str:
    out = StringIO()
    call_command("import_policies", path, stdout=out)
    return out.getvalue().strip()


def _export(*args) -> str:
    out = StringIO()
    call_command("export_policies", *args, stdout=out)
    return out.getvalue()


def _policy_changes() -> int:
    return AuditEvent.objects.filter(kind=EventKind.POLICY_CHANGED).count()


def test_import_creates_policies_and_prints_the_counts(db, tmp_path):
    assert _import(_write(tmp_path, [PRIVILEGED, READS])) == "created=2 updated=0 unchanged=0"
    policy = Policy.objects.get(name="privileged-iam")
    assert (policy.version, policy.required_approvals, policy.match) == (1, 2, PRIVILEGED["match"])
    assert PolicyVersion.objects.count() == 2
    assert _policy_changes() == 2


def test_the_event_names_the_command_line_as_its_actor(db, tmp_path):
    _import(_write(tmp_path, [READS]))
    event = AuditEvent.objects.get(kind=EventKind.POLICY_CHANGED)
    assert event.actor.startswith("cli")
    assert PolicyVersion.objects.get().changed_by == event.actor


def test_export_writes_the_list_that_import_reads(db, tmp_path):
    _import(_write(tmp_path, [READS, PRIVILEGED]))
    exported = json.loads(_export())
    assert [document["name"] for document in exported] == ["privileged-iam", "reads"]
    assert exported[0] == {**PRIVILEGED, "mode": "enforce"}
    assert exported[1] == {**READS, "enabled": True, "mode": "enforce"}


def test_mode_goes_out_and_comes_back_and_changing_it_is_a_version(db, tmp_path):
    _import(_write(tmp_path, [{**READS, "mode": "shadow"}]))
    assert Policy.objects.get().mode == "shadow"
    exported = json.loads(_export())
    assert exported[0]["mode"] == "shadow"
    assert _import(_write(tmp_path, exported, "same.json")) == "created=0 updated=0 unchanged=1"
    assert _import(_write(tmp_path, [READS], "enforced.json")) == "created=0 updated=1 unchanged=0"
    policy = Policy.objects.get()
    assert (policy.mode, policy.version) == ("enforce", 2)


def test_an_unknown_mode_refuses_the_whole_file(db, tmp_path):
    with pytest.raises(CommandError) as error:
        _import(_write(tmp_path, [PRIVILEGED, {**READS, "mode": "dry"}]))
    assert "entry reads, field mode: must be one of enforce, shadow" in str(error.value)
    assert not Policy.objects.exists()


def test_export_to_a_file_matches_export_to_stdout(db, tmp_path):
    _import(_write(tmp_path, [READS, PRIVILEGED]))
    target = tmp_path / "exported.json"
    assert "exported 2 policies" in _export("--output", str(target))
    assert json.loads(target.read_text(encoding="utf-8")) == json.loads(_export())


def test_importing_the_export_again_changes_nothing(db, tmp_path):
    _import(_write(tmp_path, [PRIVILEGED, READS]))
    target = tmp_path / "exported.json"
    _export("--output", str(target))
    versions, changes = PolicyVersion.objects.count(), _policy_changes()
    assert _import(str(target)) == "created=0 updated=0 unchanged=2"
    assert _import(_write(tmp_path, [PRIVILEGED, READS], "again.json")) == (
        "created=0 updated=0 unchanged=2"
    )
    assert (PolicyVersion.objects.count(), _policy_changes()) == (versions, changes)
    assert set(Policy.objects.values_list("version", flat=True)) == {1}


def test_an_export_of_no_policies_is_an_empty_list(db):
    assert json.loads(_export()) == []


def test_a_changed_policy_is_updated_to_a_new_version_with_its_record(db, tmp_path):
    _import(_write(tmp_path, [PRIVILEGED, READS]))
    changed = {**PRIVILEGED, "required_approvals": 3}
    output = _import(_write(tmp_path, [changed, READS], "changed.json"))
    assert output == "created=0 updated=1 unchanged=1"
    policy = Policy.objects.get(name="privileged-iam")
    assert (policy.version, policy.required_approvals) == (2, 3)
    version = PolicyVersion.objects.get(policy=policy, version=2)
    assert version.document["required_approvals"] == 3
    event = AuditEvent.objects.filter(kind=EventKind.POLICY_CHANGED).last()
    assert (event.data["policy"], event.data["version"]) == ("privileged-iam", 2)
    assert Policy.objects.get(name="reads").version == 1


BAD_ENTRIES = {
    "unknown_op": (
        {**READS, "match": {"conditions": [{"path": "amount", "op": "bigger", "value": 1}]}},
        "entry reads, field match.conditions[0].op: unknown op 'bigger'",
    ),
    "bad_glob": (
        {**READS, "match": {"tool": "iam.[grant"}},
        "entry reads, field match.tool: has an unclosed [",
    ),
    "missing_name": (
        {key: value for key, value in READS.items() if key != "name"},
        "entry #2, field name: is required",
    ),
    "duplicate_name": (
        {**PRIVILEGED, "priority": 99},
        "entry privileged-iam, field name: duplicates entry #1",
    ),
    "unknown_key": ({**READS, "colour": "red"}, "entry reads, field colour: is not a known"),
    "bad_effect": ({**READS, "effect": "maybe"}, "entry reads, field effect: must be one of"),
}


@pytest.mark.parametrize("entry, message", BAD_ENTRIES.values(), ids=BAD_ENTRIES.keys())
def test_a_file_with_a_bad_last_entry_is_refused_whole(db, tmp_path, entry, message):
    with pytest.raises(CommandError) as refused:
        _import(_write(tmp_path, [PRIVILEGED, entry]))
    assert "nothing was imported" in str(refused.value)
    assert message in str(refused.value)
    assert not Policy.objects.exists()
    assert _policy_changes() == 0


def test_a_refused_file_leaves_the_stored_policies_as_they_were(db, tmp_path):
    _import(_write(tmp_path, [PRIVILEGED, READS]))
    changed = {**PRIVILEGED, "required_approvals": 3}
    with pytest.raises(CommandError):
        _import(_write(tmp_path, [changed, {**READS, "match": {"tool": "["}}], "bad.json"))
    policy = Policy.objects.get(name="privileged-iam")
    assert (policy.version, policy.required_approvals) == (1, 2)
    assert PolicyVersion.objects.count() == 2


def test_every_problem_is_listed_on_a_line_of_its_own(db, tmp_path):
    bad = [
        {**PRIVILEGED, "effect": "maybe"},
        {**READS, "match": {"conditions": [{"path": "", "op": "gt", "value": "x"}]}},
    ]
    with pytest.raises(CommandError) as refused:
        _import(_write(tmp_path, bad))
    lines = str(refused.value).splitlines()
    assert lines[1:] == [
        "  entry privileged-iam, field effect: must be one of allow, block, require_approval",
        "  entry reads, field match.conditions[0].path: "
        "must be a dotted path such as amount or user.role",
        "  entry reads, field match.conditions[0].value: must be a number for op gt",
    ]


@pytest.mark.parametrize(
    "content, message",
    [
        ('[{"name": "reads", ', "is not JSON: Expecting"),
        ('[{"name": "reads", "effect": "allow", "priority": NaN}]', "NaN is not a JSON value"),
        (json.dumps(READS), "a policy file is a JSON list of policies"),
        ("", "is not JSON"),
    ],
    ids=["truncated", "nan", "not_a_list", "empty"],
)
def test_a_file_that_is_not_a_json_list_is_refused(db, tmp_path, content, message):
    with pytest.raises(CommandError, match=message):
        _import(_write(tmp_path, content))
    assert not Policy.objects.exists()


def test_a_missing_file_is_refused_with_its_name(db, tmp_path):
    missing = str(tmp_path / "nope.json")
    with pytest.raises(CommandError, match=f"cannot read {missing}"):
        _import(missing)


def test_a_file_nested_too_deeply_is_refused(db, tmp_path):
    with pytest.raises(CommandError, match="nested too deeply"):
        _import(_write(tmp_path, "[" * 100_000 + "]" * 100_000))
