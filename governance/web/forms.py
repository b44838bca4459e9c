"""Forms of the governance screens. They check the shape of what a person typed; the rules of
each workflow stay in ``governance.services`` (a refusal there is shown as a message)."""

from __future__ import annotations

import json
from datetime import datetime, time, timedelta
from typing import Any

from django import forms

from governance import policies, selectors
from governance.models import PolicyStatus, SharingPolicy
from governance.web.selectors import AuditSearch, hospital_choices

DATETIME_INPUT = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")
DATETIME_FORMATS = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"]


def _choices(form: forms.Form, name: str, choices: list[tuple[Any, str]]) -> None:
    field = form.fields[name]
    assert isinstance(field, forms.ChoiceField)  # noqa: S101 (declared just above)
    field.choices = choices


class HospitalField(forms.TypedChoiceField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(coerce=int, **kwargs)


class PolicyDraftForm(forms.Form):
    """Start the next version of a hospital's policy (from its latest, or the template)."""

    hospital = HospitalField(label="Hospital")
    note = forms.CharField(label="Note (why this change)", required=False, max_length=2000)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _choices(self, "hospital", [("", "Choose a hospital…"), *hospital_choices()])


class PolicyEditForm(forms.Form):
    """A draft's document as JSON, validated by the DE-ID policy validator."""

    document = forms.CharField(
        label="Policy document (JSON)",
        widget=forms.Textarea(attrs={"rows": 30, "spellcheck": "false", "class": "code"}),
        help_text=(
            "What is shared, per record kind and audience. policy_id, version, sites and "
            "issued_at are filled in from the database when the policy is published."
        ),
    )
    note = forms.CharField(
        label="Note", required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2})
    )
    effective_at = forms.DateTimeField(
        label="Effective from (UTC, optional)",
        required=False,
        widget=DATETIME_INPUT,
        input_formats=DATETIME_FORMATS,
    )

    def __init__(self, *args: Any, policy: SharingPolicy, **kwargs: Any) -> None:
        self.policy = policy
        super().__init__(*args, **kwargs)

    @classmethod
    def for_policy(cls, policy: SharingPolicy) -> PolicyEditForm:
        return cls(
            policy=policy,
            initial={
                "document": json.dumps(policy.document, indent=2, ensure_ascii=False),
                "note": policy.note,
                "effective_at": policy.effective_at,
            },
        )

    def clean_document(self) -> dict[str, Any]:
        text = self.cleaned_data["document"]
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(
                f"Not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})."
            ) from None
        try:
            policies.validate(
                document, site_code=self.policy.site_code, version=self.policy.version
            )
        except policies.PolicyError as exc:
            raise forms.ValidationError(f"Not a valid sharing policy: {exc}") from None
        if not isinstance(document, dict):  # validate refuses it already; for the type checker
            raise forms.ValidationError("The document must be a JSON object.")
        return document


class DecisionForm(forms.Form):
    comment = forms.CharField(
        label="Comment", required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2})
    )


class PublishForm(forms.Form):
    effective_at = forms.DateTimeField(
        label="Effective from (UTC; empty = now)",
        required=False,
        widget=DATETIME_INPUT,
        input_formats=DATETIME_FORMATS,
    )


class ErasureCreateForm(forms.Form):
    hospital = HospitalField(label="Hospital")
    surrogate_id = forms.CharField(
        label="Patient surrogate id",
        max_length=128,
        help_text="The de-identified id the hub knows the patient by (never a name or MRN).",
    )
    reason = forms.CharField(
        label="Reason", required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 3})
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _choices(self, "hospital", [("", "Choose a hospital…"), *hospital_choices()])

    def clean_surrogate_id(self) -> str:
        value = str(self.cleaned_data["surrogate_id"]).strip()
        if not value:
            raise forms.ValidationError("Enter the surrogate id.")
        return value


class ErasureRejectForm(forms.Form):
    reason = forms.CharField(
        label="Why is it rejected?", max_length=500, widget=forms.Textarea(attrs={"rows": 2})
    )


class AuditSearchForm(forms.Form):
    """The audit log's search (GET)."""

    q = forms.CharField(label="Text", required=False, max_length=200)
    actor = forms.CharField(label="Actor (username)", required=False, max_length=150)
    action = forms.CharField(label="Action", required=False, max_length=64)
    target = forms.CharField(label="Target", required=False, max_length=200)
    hospital = forms.TypedChoiceField(
        label="Hospital", required=False, coerce=int, empty_value=None
    )
    since = forms.DateTimeField(
        label="From (UTC)", required=False, widget=DATETIME_INPUT, input_formats=DATETIME_FORMATS
    )
    until = forms.DateTimeField(
        label="To (UTC)", required=False, widget=DATETIME_INPUT, input_formats=DATETIME_FORMATS
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _choices(self, "hospital", [("", "Any"), *hospital_choices()])

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        since, until = data.get("since"), data.get("until")
        if since and until and until <= since:
            self.add_error("until", "Must be after the start.")
        return data

    def search(self) -> AuditSearch:
        """The search to run; an invalid form searches nothing more than its valid fields."""
        data = self.cleaned_data if self.is_bound and hasattr(self, "cleaned_data") else {}
        until = data.get("until")
        if isinstance(until, datetime) and until.time() == time(0, 0) and self._date_only("until"):
            until = until + timedelta(days=1)  # a date alone means "to the end of that day"
        return AuditSearch(
            base=selectors.AuditFilter(
                actor=data.get("actor") or "",
                action=data.get("action") or "",
                hospital_id=data.get("hospital"),
                since=data.get("since"),
                until=until,
            ),
            target=data.get("target") or "",
            text=data.get("q") or "",
        )

    def _date_only(self, name: str) -> bool:
        raw = str(self.data.get(name, ""))
        return len(raw) == 10


EXPORT_FORMATS = [("csv", "CSV"), ("jsonl", "JSON Lines")]


class RetentionRunForm(forms.Form):
    mode = forms.ChoiceField(
        label="Kind of run",
        choices=[
            ("dry", "Dry run — only report what would be deleted"),
            ("real", "Real run — delete what is past retention"),
        ],
        widget=forms.RadioSelect,
    )
    confirm = forms.BooleanField(
        label="I understand a real run deletes data for good", required=False
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("mode") == "real" and not data.get("confirm"):
            self.add_error("confirm", "Tick this box to start a real run.")
        return data

    @property
    def dry_run(self) -> bool:
        return bool(self.cleaned_data.get("mode") != "real")


def policy_status_choices() -> list[tuple[str, str]]:
    return [("", "Any"), *PolicyStatus.choices]
