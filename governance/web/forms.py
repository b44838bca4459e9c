"""Forms of the governance screens. They check the shape of what a person typed; the rules of
each workflow stay in ``governance.services`` (a refusal there is shown as a message)."""

from __future__ import annotations

import copy
import json
from datetime import datetime, time, timedelta
from typing import Any

from django import forms

from deid.contracts.vocabulary import GRANULARITY_ORDER
from governance import policies, retention, selectors
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


class PolicyRulesForm(forms.Form):
    """The sharing rules of a draft as a structured form: per record kind and audience, the
    fields released, the date granularity, the small-cell threshold and k; plus the retention
    months. Everything else in the document is kept as it is. The result is validated by the
    DE-ID policy validator; its complaint is shown on the row it names."""

    def __init__(self, *args: Any, policy: SharingPolicy, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.policy = policy
        self.rows: list[dict[str, Any]] = []
        template = policies.template().get("records") or {}
        records = policy.document.get("records") or {}
        granularities = [(g.value, g.value) for g in GRANULARITY_ORDER]
        for kind, audiences in records.items():
            if not isinstance(audiences, dict):
                continue
            for audience, rule in audiences.items():
                if not isinstance(rule, dict):
                    continue
                prefix = f"{kind}__{audience}"
                known = list((template.get(kind) or {}).get(audience, {}).get("fields") or [])
                current = [str(f) for f in rule.get("fields") or []]
                choices = [*known, *(f for f in current if f not in known)]
                row: dict[str, Any] = {"kind": kind, "audience": audience, "prefix": prefix}
                self.fields[f"{prefix}__fields"] = forms.MultipleChoiceField(
                    label=f"Fields {kind} → {audience}",
                    choices=[(f, f) for f in choices],
                    initial=current,
                    required=False,
                    widget=forms.CheckboxSelectMultiple,
                )
                self.fields[f"{prefix}__granularity"] = forms.ChoiceField(
                    label=f"Dates by ({kind}, {audience})",
                    choices=granularities,
                    initial=rule.get("date_granularity", "day"),
                )
                self.fields[f"{prefix}__threshold"] = forms.IntegerField(
                    label=f"Minimum cell size ({kind}, {audience})",
                    min_value=0,
                    initial=rule.get("small_cell_threshold", 0),
                )
                row["has_k"] = "k" in rule
                if row["has_k"]:
                    self.fields[f"{prefix}__k"] = forms.IntegerField(
                        label=f"k ({kind}, {audience})", min_value=1, initial=rule.get("k")
                    )
                self.rows.append(row)
        months = policy.document.get("retention") or {}
        keys = sorted({*months, *retention_policy_keys()})
        self.retention_keys = keys
        for key in keys:
            self.fields[f"retention__{key}"] = forms.IntegerField(
                label=f"{key.replace('_', ' ')}",
                min_value=1,
                required=False,
                initial=months.get(key),
                help_text="Empty: the hub's default period.",
            )

    def bound_rows(self) -> list[dict[str, Any]]:
        out = []
        for row in self.rows:
            p = row["prefix"]
            out.append(
                {
                    **row,
                    "audience_label": str(row["audience"]).replace("_", " "),
                    "fields": self[f"{p}__fields"],
                    "granularity": self[f"{p}__granularity"],
                    "threshold": self[f"{p}__threshold"],
                    "k": self[f"{p}__k"] if row["has_k"] else None,
                    "errors": [
                        *self[f"{p}__granularity"].errors,
                        *self[f"{p}__threshold"].errors,
                        *(self[f"{p}__k"].errors if row["has_k"] else []),
                        *self[f"{p}__fields"].errors,
                    ],
                }
            )
        return out

    def bound_retention(self) -> list[Any]:
        return [self[f"retention__{key}"] for key in self.retention_keys]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.errors:
            return data
        document = copy.deepcopy(self.policy.document)
        for row in self.rows:
            p = row["prefix"]
            rule = document["records"][row["kind"]][row["audience"]]
            rule["fields"] = list(data.get(f"{p}__fields") or [])
            # A setting the document left to its default is only written when it changes,
            # so saving untouched rows does not add noise to the diff.
            for key, name, default in (
                ("date_granularity", "granularity", "day"),
                ("small_cell_threshold", "threshold", 0),
            ):
                if key in rule or data[f"{p}__{name}"] != default:
                    rule[key] = data[f"{p}__{name}"]
            if row["has_k"]:
                rule["k"] = data[f"{p}__k"]
        kept = {
            key: data[f"retention__{key}"]
            for key in self.retention_keys
            if data.get(f"retention__{key}") is not None
        }
        document.pop("retention", None)
        if kept:
            document["retention"] = kept
        try:
            policies.validate(
                document, site_code=self.policy.site_code, version=self.policy.version
            )
        except policies.PolicyError as exc:
            self._place(str(exc))
            return data
        data["document"] = document
        return data

    def _place(self, message: str) -> None:
        """Put the validator's complaint on the row its path names (or on the form)."""
        for row in self.rows:
            path = f"records.{row['kind']}.{row['audience']}"
            if message.startswith(path):
                setting = message[len(path) :].lstrip(".").split(":", 1)[0].split(".")[0]
                name = {
                    "date_granularity": "granularity",
                    "small_cell_threshold": "threshold",
                    "k": "k" if row["has_k"] else "granularity",
                }.get(setting, "fields")
                self.add_error(f"{row['prefix']}__{name}", message)
                return
        self.add_error(None, message)


def retention_policy_keys() -> list[str]:
    """The retention settings a policy may shorten (``policy_key`` of each data class)."""
    return sorted({dc.policy_key for dc in retention.data_classes() if dc.policy_key})
