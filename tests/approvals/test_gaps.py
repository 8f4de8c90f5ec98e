"""Gap detection, pure."""

from approvals.gaps import MAX_SKIPPED_LISTED, find_gaps


def test_every_kind_of_gap():
    gaps = find_gaps({0: "allow", 1: "block", 4: "allow"}, outcome_steps=[0, 9])
    assert gaps == [
        {"step": 2, "kind": "skipped_index"},
        {"step": 3, "kind": "skipped_index"},
        {"step": 4, "kind": "no_outcome"},
        {"step": 9, "kind": "ungated"},
    ]


def test_a_huge_index_range_lists_a_bounded_number_of_skipped_steps():
    gaps = find_gaps({0: "block", 2**31 - 1: "block"}, outcome_steps=[])
    assert len(gaps) == MAX_SKIPPED_LISTED
    assert gaps[0] == {"step": 1, "kind": "skipped_index"}


def test_no_gaps_for_a_clean_execution():
    assert find_gaps({0: "allow", 1: "allow"}, outcome_steps=[0, 1]) == []
