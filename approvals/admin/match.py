"""The structured match editor of the policy form: plain fields and a formset of condition rows.

No JavaScript needed: a row is a set of plain inputs, and "add a condition" submits the form with
one more empty row. Each row is checked with the same `match_problems` that import_policies uses.
"""

import json

from django import forms

from approvals.gate_request import json_problems
from approvals.policy_documents import match_problems
from approvals.policy_rules import OPS

OP_LABELS = {
    "eq": "eq (equals)",
    "ne": "ne (differs from)",
    "gt": "gt (greater than)",
    "gte": "gte (at least)",
    "lt": "lt (less than)",
    "lte": "lte (at most)",
    "in": "in (one of a list)",
    "contains": "contains (list item, substring or key)",
    "glob": "glob (shell pattern)",
    "exists": "exists (true: present, false: absent)",
}
MAX_CONDITIONS = 50
CONDITIONS_PREFIX = "conditions"


def parse_value(text: str):
    """A condition value as typed: JSON when it reads as JSON (10000, true, ["a"]), else text."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return text


def show_value(value) -> str:
    """The text that parse_value reads back as this value."""
    if isinstance(value, str) and parse_value(value) == value:
        return value
    return json.dumps(value, ensure_ascii=False)


class ConditionForm(forms.Form):
    """One condition row; a row left wholly empty is no condition."""

    path = forms.CharField(
        required=False,
        max_length=200,
        widget=forms.TextInput(attrs={"placeholder": "amount or user.role", "size": 24}),
    )
    op = forms.ChoiceField(
        required=False, choices=[("", "operator…"), *((op, OP_LABELS.get(op, op)) for op in OPS)]
    )
    value = forms.CharField(
        required=False,
        max_length=2000,
        strip=False,
        widget=forms.TextInput(attrs={"placeholder": '10000, "text", ["a", "b"]', "size": 30}),
    )

    def clean(self):
        cleaned = super().clean()
        condition = self.condition()
        if condition is None:
            return cleaned
        for field, message in match_problems({"conditions": [condition]}):
            key = field.rsplit(".", 1)[-1]
            self.add_error(key if key in self.fields else None, message)
        # The JSON text "\ud800" is a lone surrogate, which jsonb refuses: an error, not a 500.
        if problems := json_problems(condition.get("value")):
            self.add_error("value", problems[0]["message"])
        return cleaned

    def condition(self) -> dict | None:
        data = getattr(self, "cleaned_data", {})
        path, op, text = data.get("path", ""), data.get("op", ""), data.get("value", "")
        if not (path or op or text):
            return None
        condition = {"path": path, "op": op}
        if text != "":
            condition["value"] = parse_value(text)
        return condition


ConditionFormSet = forms.formset_factory(
    ConditionForm, extra=1, max_num=MAX_CONDITIONS, validate_max=True
)


def conditions_initial(match: dict) -> list[dict]:
    return [
        {
            "path": condition.get("path", ""),
            "op": condition.get("op", ""),
            "value": show_value(condition["value"]) if "value" in condition else "",
        }
        for condition in match.get("conditions", [])
        if isinstance(condition, dict)
    ]


def _glob_field(label: str, example: str, everything: str) -> forms.CharField:
    return forms.CharField(
        label=label,
        required=False,
        max_length=200,
        help_text=f"A shell-style glob such as {example} ; empty matches {everything}.",
    )


class MatchFieldsMixin(forms.Form):
    """The match keys other than conditions, as form fields of the policy form."""

    match_workflow = _glob_field("Workflow", "hr-*", "every workflow")
    match_tool = _glob_field("Tool", "iam.*", "every tool")
    match_min_risk = forms.FloatField(
        label="Risk at least",
        required=False,
        min_value=0,
        max_value=1,
        help_text="From 0 to 1; empty matches whatever the risk.",
    )
    match_labels_any = forms.CharField(
        label="Any of the risk labels",
        required=False,
        max_length=1000,
        help_text="Comma-separated, such as privilege, pii ; empty matches any labels.",
    )

    @staticmethod
    def match_initial(match: dict) -> dict:
        labels = match.get("labels_any") or []
        return {
            "match_workflow": match.get("workflow", ""),
            "match_tool": match.get("tool", ""),
            "match_min_risk": match.get("min_risk"),
            "match_labels_any": ", ".join(labels) if isinstance(labels, list) else "",
        }

    def match_document(self, conditions: list[dict]) -> dict:
        data = self.cleaned_data
        match = {}
        for key in ("workflow", "tool"):
            if data.get(f"match_{key}"):
                match[key] = data[f"match_{key}"]
        if data.get("match_min_risk") is not None:
            match["min_risk"] = data["match_min_risk"]
        labels = [label.strip() for label in data.get("match_labels_any", "").split(",")]
        if any(labels):
            match["labels_any"] = [label for label in labels if label]
        if conditions:
            match["conditions"] = conditions
        return match
