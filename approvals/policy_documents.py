"""The JSON form of a policy (DESIGN section 2) and its validation. Pure: no database.

`import_policies` refuses a file whole when any entry is wrong, naming the entry and the field;
the admin form reports the same messages.
"""

from typing import Any

from approvals.policy_rules import EFFECTS, MODES, OPS

MATCH_KEYS = {"workflow", "tool", "min_risk", "labels_any", "conditions"}
SETTING_KEYS = (
    "approvers",
    "escalate_to",
    "required_approvals",
    "forbid_self_approval",
    "allow_edit",
    "fresh_for_seconds",
    "expires_after_seconds",
    "remind_before_seconds",
)
POLICY_KEYS = {"name", "priority", "enabled", "match", "effect", "mode", *SETTING_KEYS}
NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")


def glob_problem(pattern: Any) -> str | None:
    """Why a shell-style glob is unusable, or None. An unclosed [ would silently match literally."""
    if not isinstance(pattern, str) or not pattern:
        return "must be a non-empty string"
    if len(pattern) > 200:
        return "must be at most 200 characters"
    if any(ord(char) < 32 for char in pattern):
        return "must not contain control characters"
    position = 0
    while position < len(pattern):
        if pattern[position] == "[":
            # fnmatch treats a ] right after [ or [! as a literal member of the set.
            start = position + 1
            if start < len(pattern) and pattern[start] == "!":
                start += 1
            close = pattern.find("]", start + 1)
            if close == -1:
                return f"has an unclosed [ at position {position}"
            position = close
        position += 1
    return None


def _positive_int(value: Any, *, minimum: int = 1) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def match_problems(match: Any) -> list[tuple[str, str]]:
    if not isinstance(match, dict):
        return [("match", "must be an object")]
    problems = [
        (f"match.{key}", "is not a known match key") for key in sorted(set(match) - MATCH_KEYS)
    ]
    for key in ("workflow", "tool"):
        if key in match and (problem := glob_problem(match[key])):
            problems.append((f"match.{key}", problem))
    if "min_risk" in match:
        risk = match["min_risk"]
        if isinstance(risk, bool) or not isinstance(risk, int | float) or not 0 <= risk <= 1:
            problems.append(("match.min_risk", "must be a number from 0 to 1"))
    if "labels_any" in match:
        labels = match["labels_any"]
        if not isinstance(labels, list) or not all(isinstance(x, str) and x for x in labels):
            problems.append(("match.labels_any", "must be a list of non-empty strings"))
    conditions = match.get("conditions", [])
    if not isinstance(conditions, list):
        return [*problems, ("match.conditions", "must be a list")]
    for position, condition in enumerate(conditions):
        where = f"match.conditions[{position}]"
        if not isinstance(condition, dict):
            problems.append((where, "must be an object with path, op and value"))
            continue
        for key in sorted(set(condition) - {"path", "op", "value"}):
            problems.append((f"{where}.{key}", "is not a known condition key"))
        path = condition.get("path")
        if not isinstance(path, str) or not path or any(not part for part in path.split(".")):
            problems.append((f"{where}.path", "must be a dotted path such as amount or user.role"))
        op = condition.get("op")
        if op not in OPS:
            problems.append((f"{where}.op", f"unknown op {op!r}; use one of {' '.join(OPS)}"))
            continue
        value = condition.get("value")
        if op != "exists" and "value" not in condition:
            problems.append((f"{where}.value", "is required"))
        elif op == "in" and not isinstance(value, list):
            problems.append((f"{where}.value", "must be a list for op in"))
        elif op == "glob" and (problem := glob_problem(value)):
            problems.append((f"{where}.value", problem))
        elif op in ("gt", "gte", "lt", "lte") and (
            isinstance(value, bool) or not isinstance(value, int | float)
        ):
            problems.append((f"{where}.value", f"must be a number for op {op}"))
        elif op == "exists" and "value" in condition and not isinstance(value, bool):
            problems.append((f"{where}.value", "must be true or false for op exists"))
    return problems


def policy_problems(document: Any) -> list[tuple[str, str]]:
    """(field, message) for everything wrong with one policy document."""
    if not isinstance(document, dict):
        return [("entry", "must be an object")]
    problems = [(key, "is not a known policy key") for key in sorted(set(document) - POLICY_KEYS)]
    name = document.get("name")
    if not isinstance(name, str) or not name:
        problems.append(("name", "is required"))
    elif len(name) > 100 or not set(name) <= NAME_CHARS:
        problems.append(("name", "must be at most 100 letters, digits, - or _"))
    if document.get("effect") not in EFFECTS:
        problems.append(("effect", f"must be one of {', '.join(EFFECTS)}"))
    if document.get("mode", "enforce") not in MODES:
        problems.append(("mode", f"must be one of {', '.join(MODES)}"))
    priority = document.get("priority", 100)
    if isinstance(priority, bool) or not isinstance(priority, int) or abs(priority) > 2**31 - 1:
        problems.append(("priority", "must be a whole number"))
    for key in ("enabled", "forbid_self_approval", "allow_edit"):
        if key in document and document[key] is not None and not isinstance(document[key], bool):
            problems.append((key, "must be true or false"))
    for key in ("approvers", "escalate_to"):
        value = document.get(key)
        if value is not None and (not isinstance(value, str) or len(value) > 150):
            problems.append((key, "must be a group name of at most 150 characters"))
    minimums = {
        "required_approvals": 1,
        "fresh_for_seconds": 1,
        "expires_after_seconds": 1,
        "remind_before_seconds": 0,
    }
    for key, minimum in minimums.items():
        value = document.get(key)
        if value is not None and not _positive_int(value, minimum=minimum):
            problems.append((key, f"must be a whole number of at least {minimum}"))
    required = document.get("required_approvals")
    if required is not None and _positive_int(required) and required > 100:
        problems.append(("required_approvals", "must be at most 100"))
    problems.extend(match_problems(document.get("match", {})))
    return problems


def policy_file_problems(documents: Any) -> list[dict]:
    """Every problem in a policy file, each naming its entry (by name, or position) and field."""
    if not isinstance(documents, list):
        return [
            {"entry": None, "field": None, "message": "a policy file is a JSON list of policies"}
        ]
    found = []
    seen: dict[str, int] = {}
    for position, document in enumerate(documents):
        name = document.get("name") if isinstance(document, dict) else None
        entry = name if isinstance(name, str) and name else f"#{position + 1}"
        for field, message in policy_problems(document):
            found.append({"entry": entry, "field": field, "message": message})
        if isinstance(name, str) and name:
            if name in seen:
                found.append(
                    {
                        "entry": entry,
                        "field": "name",
                        "message": f"duplicates entry #{seen[name] + 1}",
                    }
                )
            else:
                seen[name] = position
    return found


def normalise(document: dict) -> dict:
    """The stored form: defaults filled for the core keys, unset settings left out."""
    result = {
        "name": document["name"],
        "priority": document.get("priority", 100),
        "enabled": document.get("enabled", True),
        "match": document.get("match", {}),
        "effect": document["effect"],
        "mode": document.get("mode", "enforce"),
    }
    for key in SETTING_KEYS:
        value = document.get(key)
        if value is not None and value != "":
            result[key] = value
    return result
