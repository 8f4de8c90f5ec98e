"""The one rule for characters that print as nothing or move text around.

Identities refuse them (approvals.identity), and agent text shows them as escapes
(audit.jsontext): both read this rule, so a character hidden on one side is never let through
on the other.
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
_PLANES = (range(0x20000), range(0xE0000, 0xE1000))


def is_invisible(char: str) -> bool:
    """A character that prints as nothing or moves text around, so two texts look alike."""
    return ord(char) in _INVISIBLE or unicodedata.category(char) in _REFUSED_CATEGORIES


@functools.cache
def _invisible_codes() -> tuple[int, ...]:
    return tuple(
        code
        for plane in _PLANES
        for code in plane
        if not 0xD800 <= code <= 0xDFFF and is_invisible(chr(code))
    )


def character_class(*, except_for: str = "") -> str:
    """The rule as the inside of a regular expression's [...], less the characters given."""
    kept = {ord(char) for char in except_for}
    codes = [code for code in _invisible_codes() if code not in kept]
    ranges, start = [], codes[0]
    for previous, code in zip(codes, [*codes[1:], None], strict=True):
        if code != previous + 1:
            ranges.append(
                re.escape(chr(start)) + ("-" + re.escape(chr(previous)) if previous > start else "")
            )
            start = code
    return "".join(ranges)
