"""Forms behind the Django admin: policy editing, the policy dry run, service account creation.

They validate only; the admin calls the services to write. A policy is checked with the same
`policy_problems` that `import_policies` uses, so the admin and the command never disagree.
"""

import json
import re

from django import forms
from django.conf import settings
from django.contrib.auth.models import Group

from approvals.admin.match import (
    CONDITIONS_PREFIX,
    ConditionFormSet,
    MatchFieldsMixin,
    conditions_initial,
)
from approvals.errors import ValidationFailed
from approvals.gate_request import GateRequest, json_problems, parse_gate_request
from approvals.models import Policy, ServiceAccount
from approvals.policy_documents import SETTING_KEYS, policy_problems
from gatekeeper.outbound import url_problem

# The match is edited as fields and condition rows (admin_match), not as the model's JSON.
POLICY_FIELDS = ("name", "priority", "enabled", "mode", "effect", *SETTING_KEYS)
# "required_approvals" and "match.tool" name the form fields "required_approvals", "match_tool".
_TOP_FIELD = re.compile(r"[^.\[]+")


class StorableJSONField(forms.JSONField):
    """A JSON form field whose value jsonb can hold, and whose text can always be shown again.

    "\\ud800" decodes to a lone surrogate: Django's field would accept it, then fail to encode
    the page that shows it back (a 500), or the database would refuse it. Refused here, and
    shown back as the escape it was typed as. The replay form's draft document uses it.
    """

    def validate(self, value):
        super().validate(value)
        problems = json_problems(value)
        if problems:
            message, where = problems[0]["message"], problems[0]["field"].removeprefix("body.")
            place = f" (at {where})" if where != "body" else ""
            raise forms.ValidationError(f"{message[:1].upper()}{message[1:]}{place}.")

    def prepare_value(self, value):
        text = super().prepare_value(value)
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return json.dumps(value, ensure_ascii=True, cls=self.encoder)
        return text


# Submit buttons of the policy form that redisplay it instead of saving (no JavaScript needed).
FORM_ACTIONS = ("_add_condition", "_dry_run", "_dry_run_use", "_dry_run_search")


class DefaultedNullBooleanSelect(forms.NullBooleanSelect):
    """Yes / no / the default, the default named by its value and where it comes from."""

    def __init__(self, default_label: str, attrs=None):
        super().__init__(attrs)
        self.choices = [("unknown", default_label), ("true", "yes"), ("false", "no")]


def setting_defaults() -> dict[str, str]:
    """What each packet setting is when a policy leaves it empty, and where that comes from.

    Read when a form is made, never at import: settings may change under tests and deploys.
    """

    def source(name: str, value) -> str:
        shown = ("yes" if value else "no") if isinstance(value, bool) else value
        return f"default ({shown}, from GATEKEEPER_DEFAULT_{name})"

    remind = settings.GATEKEEPER_DEFAULT_REMIND_BEFORE_SECONDS
    return {
        "approvers": source("APPROVERS", settings.GATEKEEPER_DEFAULT_APPROVERS),
        "escalate_to": "none (no escalation)",
        "required_approvals": source(
            "REQUIRED_APPROVALS", settings.GATEKEEPER_DEFAULT_REQUIRED_APPROVALS
        ),
        "forbid_self_approval": source(
            "FORBID_SELF_APPROVAL", settings.GATEKEEPER_DEFAULT_FORBID_SELF_APPROVAL
        ),
        "allow_edit": source("ALLOW_EDIT", settings.GATEKEEPER_DEFAULT_ALLOW_EDIT),
        "fresh_for_seconds": source(
            "FRESH_FOR_SECONDS", settings.GATEKEEPER_DEFAULT_FRESH_FOR_SECONDS
        ),
        "expires_after_seconds": source(
            "EXPIRES_AFTER_SECONDS", settings.GATEKEEPER_DEFAULT_EXPIRES_AFTER_SECONDS
        ),
        "remind_before_seconds": (
            source("REMIND_BEFORE_SECONDS", remind)
            if remind is not None
            else "default (a quarter of the expiry, as GATEKEEPER_DEFAULT_REMIND_BEFORE_SECONDS "
            "is unset)"
        ),
    }


class PolicyForm(MatchFieldsMixin, forms.ModelForm):
    """The policy as fields: groups picked from those that exist, the match as rows.

    The condition rows are a formset the form owns (`conditions`), so the admin validates and
    renders them with the policy. A POST made by one of FORM_ACTIONS is redisplayed, not saved.
    """

    approvers = forms.ChoiceField(required=False)
    escalate_to = forms.ChoiceField(required=False)

    # Left out of a post, the mode stays what it is: no form ever promotes a shadow policy by
    # omission (promotion is its own action).
    mode = forms.ChoiceField(
        choices=Policy.Mode.choices,
        required=False,
        help_text="A shadow policy is evaluated on every gate check and its would-be answer "
        "stored with the check, but it never decides.",
    )

    class Meta:
        model = Policy
        fields = POLICY_FIELDS
        widgets = {
            "forbid_self_approval": DefaultedNullBooleanSelect(""),
            "allow_edit": DefaultedNullBooleanSelect(""),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        match = self.instance.match if self.instance.pk is not None else {}
        if not self.is_bound:
            self.initial.update(self.match_initial(match))
        self.action = next((a for a in FORM_ACTIONS if a in (self.data or {})), None)
        self.conditions = ConditionFormSet(
            self.data if self.is_bound else None,
            prefix=CONDITIONS_PREFIX,
            initial=None if self.is_bound else conditions_initial(match),
        )
        dry_run_text = self.data.get("dry_run-request", "") if self.is_bound else ""
        if self.action in ("_dry_run", "_dry_run_use"):
            self.dry_run = DryRunForm(self.data, prefix="dry_run")
        else:
            # Kept as typed across the other buttons, and checked only when asked to run.
            self.dry_run = DryRunForm(prefix="dry_run", initial={"request": dry_run_text})
        defaults = setting_defaults()
        group_names = list(Group.objects.order_by("name").values_list("name", flat=True))
        for key in ("approvers", "escalate_to"):
            names = list(group_names)
            stored = getattr(self.instance, key)
            if stored and stored not in names:
                # Named before groups were checked: shown as missing, refused when saved.
                names.append(stored)
            self.fields[key].choices = [
                ("", defaults[key]),
                *(
                    (name, name if name in group_names else f"{name} (missing group)")
                    for name in names
                ),
            ]
            self.fields[key].help_text = "A group that exists (Authentication > Groups)."
        # A view-only admin gets the form without the model's fields (all shown read-only).
        for key in ("forbid_self_approval", "allow_edit"):
            if key in self.fields:
                self.fields[key].widget.choices[0] = ("unknown", defaults[key])
        for key in (
            "required_approvals",
            "fresh_for_seconds",
            "expires_after_seconds",
            "remind_before_seconds",
        ):
            if key in self.fields:
                self.fields[key].help_text = f"Empty: {defaults[key]}."

    def is_valid(self) -> bool:
        # A redisplay (add a row, dry run) validates, to show problems, but never saves.
        valid = super().is_valid() and self.conditions.is_valid()
        return valid and self.action is None

    def clean(self):
        cleaned = super().clean()
        if not self.conditions.is_valid():
            self.add_error(None, "A condition row has a problem; see the rows below.")
        if self.errors:
            # Field-level errors already explain the problem; checking a half-read document
            # would only add confusing follow-up messages.
            return cleaned
        for field, message in policy_problems(self.policy_document()):
            top = _TOP_FIELD.match(field).group(0)
            if top == "match":
                top = "match_" + field.removeprefix("match.").split("[")[0]
            if top in self.fields:
                plain = field == top or field.startswith("match.")
                self.add_error(top, message if plain else f"{field}: {message}")
            else:
                self.add_error(None, f"{field}: {message}")
        return cleaned

    def match_conditions(self) -> list[dict]:
        return [
            condition
            for form in self.conditions.forms
            if (condition := form.condition()) is not None
        ]

    def policy_document(self) -> dict:
        """The policy as its JSON document, the one thing policy_save accepts."""
        data = self.cleaned_data
        # The name is read-only once a policy exists: policy_save finds policies by name.
        name = data.get("name", self.instance.name)
        document = {
            "name": name,
            "priority": data["priority"],
            "enabled": data["enabled"],
            "match": self.match_document(self.match_conditions()),
            "effect": data["effect"],
            "mode": data.get("mode") or self.instance.mode,
        }
        for key in SETTING_KEYS:
            if data.get(key) not in (None, ""):
                document[key] = data[key]
        return document


class DryRunForm(forms.Form):
    request = forms.CharField(
        label="Gate request (JSON)",
        widget=forms.Textarea(attrs={"rows": 20, "cols": 100, "spellcheck": "false"}),
        help_text="The body of POST /api/v1/gate; idempotency_key may be left out.",
        strip=False,
    )

    def clean_request(self) -> GateRequest:
        text = self.cleaned_data["request"]
        if len(text.encode()) > settings.GATEKEEPER_MAX_REQUEST_BYTES:
            raise forms.ValidationError(
                f"is larger than {settings.GATEKEEPER_MAX_REQUEST_BYTES} bytes"
            )
        try:
            body = json.loads(text)
        except ValueError as error:
            raise forms.ValidationError(f"is not valid JSON: {error}") from None
        except RecursionError:
            # json.loads recurses once per nesting level; the API refuses deep bodies anyway.
            raise forms.ValidationError("is nested too deeply") from None
        try:
            return parse_gate_request(body, require_key=False)
        except ValidationFailed as failure:
            raise forms.ValidationError(
                [f"{item['field']}: {item['message']}" for item in failure.details["errors"]]
            ) from None


class ServiceAccountAddForm(forms.ModelForm):
    """Only what a person chooses; the token and webhook secret are made by the service."""

    class Meta:
        model = ServiceAccount
        fields = ("name", "callback_url")

    def clean_callback_url(self) -> str:
        url = self.cleaned_data["callback_url"]
        if url and (problem := url_problem(url)) is not None:
            raise forms.ValidationError(f"The callback URL {problem}.")
        return url
