"""Forms behind the Django admin: policy editing, the policy dry run, service account creation.

They validate only; the admin calls the services to write. A policy is checked with the same
`policy_problems` that `import_policies` uses, so the admin and the command never disagree.
"""

import json
import re

from django import forms
from django.conf import settings

from approvals.errors import ValidationFailed
from approvals.gate_request import GateRequest, json_problems, parse_gate_request
from approvals.models import Policy, ServiceAccount
from approvals.policy_documents import SETTING_KEYS, policy_problems
from gatekeeper.outbound import url_problem

POLICY_FIELDS = ("name", "priority", "enabled", "match", "effect", *SETTING_KEYS)
# "match.conditions[0].op" belongs to the form field "match".
_TOP_FIELD = re.compile(r"[^.\[]+")


class StorableJSONField(forms.JSONField):
    """A JSON form field whose value jsonb can hold, and whose text can always be shown again.

    "\\ud800" decodes to a lone surrogate: Django's field would accept it, then fail to encode
    the page that shows it back (a 500), or the database would refuse it. Refused here, and
    shown back as the escape it was typed as.
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


class PolicyForm(forms.ModelForm):
    class Meta:
        model = Policy
        fields = POLICY_FIELDS
        field_classes = {"match": StorableJSONField}

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            # Field-level errors (bad JSON, a missing effect) already explain the problem;
            # checking a half-read document would only add confusing follow-up messages.
            return cleaned
        for field, message in policy_problems(self.policy_document()):
            top = _TOP_FIELD.match(field).group(0)
            if top in self.fields:
                self.add_error(top, field + ": " + message if field != top else message)
            else:
                self.add_error(None, f"{field}: {message}")
        return cleaned

    def policy_document(self) -> dict:
        """The policy as its JSON document, the one thing policy_save accepts."""
        data = self.cleaned_data
        # The name is read-only once a policy exists: policy_save finds policies by name.
        name = data.get("name", self.instance.name)
        document = {
            "name": name,
            "priority": data["priority"],
            "enabled": data["enabled"],
            "match": data["match"] if data["match"] is not None else {},
            "effect": data["effect"],
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
