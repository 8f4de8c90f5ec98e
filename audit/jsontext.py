"""Agent data shown to people: indented JSON text, keys sorted, non-ASCII kept readable.

Every page and admin view uses this one rendering; templates escape the text like any other.
"""

import json


def pretty_json(value) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)
