"""Names of people as identities (DESIGN section 5): how they compare, and what they may hold.

Pure: no database. Four-eyes compares `on_behalf_of` with a reviewer's username, and a raw
string comparison lets `ALICE`, ` alice` or `alice` followed by a zero-width space through.
"""

import functools
import unicodedata

from audit.invisible import character_class, is_invisible


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
    return "^[^" + character_class() + "]*$"


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
