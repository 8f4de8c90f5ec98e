"""Identities compare case-folded and NFKC-normalised; invisible characters cannot hide in them."""

import re
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from approvals.identity import (
    identity_key,
    identity_pattern,
    identity_problem,
    is_invisible,
    same_identity,
)


@pytest.mark.parametrize(
    "lookalike", ["ALICE", "Alice", " alice", "alice ", "\talice\n", "ａｌｉｃｅ"]
)
def test_a_lookalike_of_alice_is_alice(lookalike):
    assert same_identity(lookalike, "alice")


def test_a_zero_width_space_does_not_make_another_person():
    assert same_identity("alice\u200b", "alice")


def test_different_names_stay_different():
    assert not same_identity("alice", "alicia")
    assert not same_identity("alice", "bob")


def test_an_empty_name_is_nobody():
    assert not same_identity("", "")
    assert not same_identity("  ", "")
    assert not same_identity("\u200b", "")


def test_case_folding_goes_further_than_lowercase():
    assert same_identity("STRASSE", "straße")
    assert same_identity("İlker", "i̇lker")


@pytest.mark.parametrize(
    "char",
    [
        "\x00",
        "\x07",
        "\x1b",
        "\x7f",
        "\x85",  # controls
        "\u200b",
        "\u200c",
        "\u200d",
        "\u200e",
        "\u200f",  # zero-width and marks
        "\u2028",
        "\u2029",  # line and paragraph separators
        "\u202a",
        "\u202b",
        "\u202c",
        "\u202d",
        "\u202e",  # bidi embeddings and overrides
        "\u2060",
        "\u2061",
        "\u2062",
        "\u2063",
        "\u2064",  # word joiner, invisible operators
        "\u2066",
        "\u2067",
        "\u2068",
        "\u2069",  # bidi isolates
        "\ufeff",
        "\u00ad",
        "\u180e",
        "\U000e0041",  # BOM, soft hyphen, Mongolian separator, tag
        "\u3164",
        "\u115f",
        "\u034f",
        "\ufe0f",
        "\u2800",  # fillers, joiner, selector, blank
    ],
)
def test_invisible_and_control_characters_are_refused(char):
    assert is_invisible(char)
    problem = identity_problem(f"ali{char}ce")
    assert problem is not None and f"U+{ord(char):04X}" in problem


@pytest.mark.parametrize(
    "name", ["alice", "Zoë", "José María", "Łukasz", "山田", "o'brien", "a.b-c_d"]
)
def test_ordinary_names_are_accepted(name):
    assert identity_problem(name) is None


@given(st.text())
def test_the_key_is_stable_under_itself(name):
    key = identity_key(name)
    assert identity_key(key) == key
    assert identity_problem(key) is None


@given(st.text(), st.sampled_from(["", " ", "\u200b", "\u202e", "\ufeff", "\t"]))
def test_invisible_padding_never_makes_another_identity(name, pad):
    assert identity_key(pad + name + pad) == identity_key(name)


@given(st.text(alphabet=st.characters(categories=["L", "N"]), min_size=1))
def test_compatibility_forms_are_one_identity(name):
    assert same_identity(unicodedata.normalize("NFKD", name), name) == bool(identity_key(name))


def test_the_documented_pattern_says_exactly_what_the_gate_refuses():
    """The OpenAPI document's pattern and identity_problem agree on every code point."""
    pattern = re.compile(identity_pattern())
    for code in range(0x110000):
        if 0xD800 <= code <= 0xDFFF:  # lone surrogates are refused as invalid Unicode instead
            continue
        char = chr(code)
        assert (pattern.fullmatch(char) is None) == (identity_problem(char) is not None), hex(code)
