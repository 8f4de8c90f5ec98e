"""The branch table over every combination of facts, and its safety properties."""

import itertools
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from approvals.branch_table import Facts, Outcome, decide_approval, guard

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
SIDE_EFFECTS = ("not_started", "landed", "indeterminate")


def facts(
    *,
    expired=False,
    stale=False,
    owner_changed=False,
    side_effect="not_started",
    votes=1,
    required=1,
    now=T0,
) -> Facts:
    return Facts(
        now=now,
        expires_at=now - timedelta(seconds=1) if expired else now + timedelta(hours=1),
        fresh_until=now - timedelta(seconds=1) if stale else now + timedelta(minutes=5),
        owner_changed=owner_changed,
        side_effect=side_effect,
        votes_with_this_one=votes,
        required_approvals=required,
    )


def expected(expired, owner_changed, side_effect, stale, quorum) -> Outcome:
    """DESIGN section 4, row by row, written independently of the implementation."""
    rows = [
        (expired, Outcome.EXPIRED),
        (owner_changed, Outcome.TERMINATE),
        (side_effect in ("landed", "indeterminate"), Outcome.RECONCILE),
        (stale, Outcome.RE_REVIEW),
        (quorum, Outcome.RESUME),
        (True, Outcome.VOTE_RECORDED),
    ]
    return next(outcome for holds, outcome in rows if holds)


def test_every_combination_of_facts_follows_the_precedence_of_the_table():
    combos = itertools.product(
        [False, True], [False, True], SIDE_EFFECTS, [False, True], [False, True]
    )
    checked = 0
    for expired, owner_changed, side_effect, stale, quorum in combos:
        given_facts = facts(
            expired=expired,
            owner_changed=owner_changed,
            side_effect=side_effect,
            stale=stale,
            votes=2 if quorum else 1,
            required=2,
        )
        assert decide_approval(given_facts) is expected(
            expired, owner_changed, side_effect, stale, quorum
        ), (expired, owner_changed, side_effect, stale, quorum)
        checked += 1
    assert checked == 48


def test_outcomes_carry_the_status_branch_and_decision_of_the_table():
    assert (Outcome.EXPIRED.status, Outcome.EXPIRED.branch, Outcome.EXPIRED.decision) == (
        "expired",
        None,
        "block",
    )
    assert (Outcome.TERMINATE.status, Outcome.TERMINATE.branch, Outcome.TERMINATE.decision) == (
        "terminated",
        "terminate",
        "block",
    )
    assert (Outcome.RECONCILE.status, Outcome.RECONCILE.decision) == ("reconciling", None)
    assert (Outcome.RE_REVIEW.status, Outcome.RE_REVIEW.decision) == ("re_review", None)
    assert (Outcome.RESUME.status, Outcome.RESUME.branch, Outcome.RESUME.decision) == (
        "approved",
        "resume",
        "allow",
    )
    assert Outcome.VOTE_RECORDED.status == "pending"


def test_rows_one_to_four_record_no_vote():
    for outcome in (Outcome.EXPIRED, Outcome.TERMINATE, Outcome.RECONCILE, Outcome.RE_REVIEW):
        assert not outcome.records_vote
    assert Outcome.RESUME.records_vote and Outcome.VOTE_RECORDED.records_vote


def test_the_deadline_itself_counts_as_expired_and_stale():
    exactly = Facts(
        now=T0,
        expires_at=T0,
        fresh_until=T0,
        owner_changed=False,
        side_effect="not_started",
        votes_with_this_one=1,
        required_approvals=1,
    )
    assert decide_approval(exactly) is Outcome.EXPIRED
    assert (
        decide_approval(Facts(**{**exactly.__dict__, "expires_at": T0 + timedelta(1)}))
        is Outcome.RE_REVIEW
    )


def test_guard_applies_only_rows_one_and_two():
    assert guard(facts(expired=True)) is Outcome.EXPIRED
    assert guard(facts(owner_changed=True)) is Outcome.TERMINATE
    assert guard(facts(side_effect="landed", stale=True)) is None


offsets = st.integers(min_value=-(10**6), max_value=10**6).map(lambda s: timedelta(seconds=s))
fact_values = st.builds(
    lambda now_offset, expires, fresh, owner_changed, side_effect, votes, required: Facts(
        now=T0 + now_offset,
        expires_at=T0 + expires,
        fresh_until=T0 + fresh,
        owner_changed=owner_changed,
        side_effect=side_effect,
        votes_with_this_one=votes,
        required_approvals=required,
    ),
    offsets,
    offsets,
    offsets,
    st.booleans(),
    st.sampled_from(SIDE_EFFECTS),
    st.integers(min_value=0, max_value=10),
    st.integers(min_value=1, max_value=10),
)


@given(fact_values)
def test_never_resume_when_expired_owner_changed_or_side_effect_unsettled(f):
    if (
        f.now >= f.expires_at
        or f.owner_changed
        or f.side_effect != "not_started"
        or f.now >= f.fresh_until
    ):
        assert decide_approval(f) is not Outcome.RESUME
    if decide_approval(f) is Outcome.RESUME:
        assert f.votes_with_this_one >= f.required_approvals


@given(fact_values, st.integers(min_value=1, max_value=10**7))
def test_time_passing_never_approves(f, later_seconds):
    later = Facts(**{**f.__dict__, "now": f.now + timedelta(seconds=later_seconds)})
    if decide_approval(f) is not Outcome.RESUME:
        assert decide_approval(later) is not Outcome.RESUME
    # And once the deadline has passed, every action only ever expires the packet.
    if f.now >= f.expires_at:
        assert decide_approval(later) is Outcome.EXPIRED
