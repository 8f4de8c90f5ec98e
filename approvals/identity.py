"""Names of people as identities (DESIGN section 5): how they compare, and what they may hold.

Pure: no database. Four-eyes compares `on_behalf_of` with a reviewer's username, and a raw
string comparison lets `ALICE`, ` alice` or `alice` followed by a zero-width space through.
"""

import functools
import re
import unicodedata

# Invisible in most fonts though not in a refused category: Hangul fillers, the combining
# grapheme joiner, Khmer inherent vowels, the Braille blank and variation selectors.
_INVISIBLE = frozenset(
    {0x034F, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x2800, 0x3164, 0xFFA0}
    | set(range(0xFE00, 0xFE10))
    | set(range(0xE0100, 0xE01F0))
)
# Controls, format characters (zero-width, bidi, BOM, tags), line and paragraph separators.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp"})
# Where Unicode puts every character of those categories: the first two planes and plane 14.
_PLANES_WITH_REFUSED = (range(0x20000), range(0xE0000, 0xE1000))


def is_invisible(char: str) -> bool:
    """A character that prints as nothing or moves text around, so two names look alike."""
    return ord(char) in _INVISIBLE or unicodedata.category(char) in _REFUSED_CATEGORIES


def identity_problem(value: str) -> str | None:
    """Why the value cannot name an identity, or None when it can."""
    if value.isascii() and value.isprintable():  # nearly every name: no per-character lookups
        return None
    for char in value:
        if is_invisible(char):
            return f"contains an invisible or control character (U+{ord(char):04X})"
    return None


@functools.cache
def identity_pattern() -> str:
    """The same rule as a regular expression, for the OpenAPI document to tell clients."""
    refused = [
        code
        for plane in _PLANES_WITH_REFUSED
        for code in plane
        if not 0xD800 <= code <= 0xDFFF and is_invisible(chr(code))
    ]
    ranges, start = [], refused[0]
    for previous, code in zip(refused, [*refused[1:], None], strict=True):
        if code != previous + 1:
            ranges.append(
                re.escape(chr(start)) + ("-" + re.escape(chr(previous)) if previous > start else "")
            )
            start = code
    return "^[^" + "".join(ranges) + "]*$"


def identity_key(name: str) -> str:
    """The form two names are compared in: NFKC, case-folded, without surrounding whitespace.

    Invisible characters are dropped as well, so a name stored before the gate refused them
    still matches the person it imitates.
    """
    visible = "".join(char for char in name if not is_invisible(char))
    # Case folding can leave a string that is not NFKC again (e.g. U+0130), hence twice.
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", visible).casefold())
    return folded.strip()


def same_identity(first: str, second: str) -> bool:
    """True when the two names denote the same person; an empty name denotes nobody."""
    key = identity_key(first)
    return bool(key) and key == identity_key(second)
