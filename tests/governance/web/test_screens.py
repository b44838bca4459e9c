"""The governance screens through Django's test client: who may open what, and that bad
input comes back as the page with its errors (never a server error)."""

from __future__ import annotations

import copy
import csv
import io
import json
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from governance import audit, services
from governance.models import AuditEvent, ErasureStatus, PolicyStatus, RetentionRun, SharingPolicy
from governance.roles import Role
from tests.governance.conftest import Region, UserFactory

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db,
    pytest.mark.usefixtures("governance_keys", "control_messages"),
]

LIST_PAGES = ["govweb:policies", "govweb:erasure", "govweb:audit", "govweb:retention"]


def _streamed(response: Any) -> str:
    return b"".join(response.streaming_content).decode()


def signed_in(client: Client, user: Any) -> Client:
    client.force_login(user)
    return client


def test_the_board_opens_every_governance_screen(client: Client, make_user: UserFactory) -> None:
    signed_in(client, make_user(Role.GOVERNANCE_BOARD))
    for name in LIST_PAGES:
        response = client.get(reverse(name))
        assert response.status_code == 200, name
        assert b"Regional Twin Hub" in response.content


def test_an_auditor_reads_and_exports_the_audit_log_but_nothing_else(
    client: Client, make_user: UserFactory, region: Region
) -> None:
    auditor = make_user(Role.AUDITOR)
    audit.record(actor=auditor, action="test.synthetic", target="synthetic-target")
    signed_in(client, auditor)
    assert client.get(reverse("govweb:audit")).status_code == 200
    export = client.get(reverse("govweb:audit-export"), {"format": "csv"})
    assert export.status_code == 200
    assert "attachment" in export["Content-Disposition"]
    for name in ("govweb:policies", "govweb:erasure", "govweb:retention"):
        assert client.get(reverse(name)).status_code == 403, name
    assert client.post(reverse("govweb:policies"), {"hospital": region.a.pk}).status_code == 403
    assert client.post(reverse("govweb:retention"), {"mode": "dry"}).status_code == 403


def test_a_regional_operator_gets_403_on_every_governance_screen(
    client: Client, make_user: UserFactory, region: Region
) -> None:
    signed_in(client, make_user(Role.REGIONAL_OPERATOR))
    policy = services.policy_create_draft(
        actor=make_user(Role.GOVERNANCE_BOARD), hospital_id=region.a.pk
    )
    urls = [reverse(n) for n in LIST_PAGES] + [
        reverse("govweb:audit-export"),
        reverse("govweb:policy-detail", args=[policy.pk]),
        reverse("govweb:policy-preview", args=[policy.pk]),
    ]
    for url in urls:
        assert client.get(url).status_code == 403, url
    assert client.post(reverse("govweb:audit-verify")).status_code == 403
    assert client.post(reverse("govweb:policy-submit", args=[policy.pk])).status_code == 403
    policy.refresh_from_db()
    assert policy.status == PolicyStatus.DRAFT


def test_anonymous_visitors_are_sent_to_sign_in(client: Client) -> None:
    response = client.get(reverse("govweb:audit"))
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_the_audit_export_is_itself_audited_with_its_filter_and_count(
    client: Client, make_user: UserFactory
) -> None:
    board = make_user(Role.GOVERNANCE_BOARD)
    for n in range(3):
        audit.record(actor=board, action="test.export_me", target=f"thing-{n}")
    audit.record(actor=board, action="test.not_me")
    signed_in(client, board)
    response = client.get(
        reverse("govweb:audit-export"), {"action": "test.export_me", "format": "jsonl"}
    )
    lines = _streamed(response).splitlines()
    assert [json.loads(line)["target"] for line in lines] == ["thing-2", "thing-1", "thing-0"]
    event = AuditEvent.objects.filter(action="export_audit").latest("id")
    assert event.row_count == 3
    assert event.detail["format"] == "jsonl"
    assert "test.export_me" in event.detail["query"]


def test_csv_export_has_a_header_and_one_row_per_event(
    client: Client, make_user: UserFactory
) -> None:
    board = make_user(Role.GOVERNANCE_BOARD)
    audit.record(actor=board, action="test.csv", detail={"k": [1, 2]})
    signed_in(client, board)
    response = client.get(reverse("govweb:audit-export"), {"action": "test.csv"})
    rows = list(csv.reader(io.StringIO(_streamed(response))))
    assert rows[0][:2] == ["id", "occurred_at"]
    assert len(rows) == 2
    assert json.loads(rows[1][rows[0].index("detail")]) == {"k": [1, 2]}


def test_audit_search_filters_by_text_and_time(client: Client, make_user: UserFactory) -> None:
    board = make_user(Role.GOVERNANCE_BOARD)
    audit.record(actor=board, action="test.findable", target="needle-42")
    audit.record(actor=board, action="test.other", target="hay")
    signed_in(client, board)
    html = client.get(reverse("govweb:audit"), {"q": "needle"}).content.decode()
    assert "needle-42" in html
    assert ">hay<" not in html
    bad = client.get(reverse("govweb:audit"), {"since": "2026-02-02T10:00", "until": "2026-01-01"})
    assert bad.status_code == 200
    assert "Must be after the start." in bad.content.decode()
    assert client.get(reverse("govweb:audit"), {"since": "not a date"}).status_code == 200


def test_verify_reports_ok_with_the_count_and_head_hash(
    client: Client, make_user: UserFactory
) -> None:
    board = make_user(Role.GOVERNANCE_BOARD)
    audit.record(actor=board, action="test.chain")
    services.audit_link()
    head = AuditEvent.objects.exclude(chain_hash=None).order_by("-chain_seq").first()
    assert head is not None
    signed_in(client, board)
    html = client.post(reverse("govweb:audit-verify")).content.decode()
    assert "The audit chain is intact" in html
    assert str(head.chain_hash) in html


def test_a_bad_policy_document_is_shown_next_to_the_field(
    client: Client, make_user: UserFactory, region: Region
) -> None:
    board = make_user(Role.GOVERNANCE_BOARD)
    policy = services.policy_create_draft(actor=board, hospital_id=region.a.pk)
    signed_in(client, board)
    url = reverse("govweb:policy-edit", args=[policy.pk])
    response = client.post(url, {"document": "{not json", "note": ""})
    assert response.status_code == 200
    assert "Not valid JSON" in response.content.decode()
    document = dict(policy.document, retention={"flow_records_months": -1})
    response = client.post(url, {"document": json.dumps(document)})
    assert response.status_code == 200
    assert "retention" in response.content.decode()
    assert "{not json" not in response.content.decode()  # the last input is shown, not the first
    policy.refresh_from_db()
    assert "retention" not in policy.document


def test_a_step_the_workflow_refuses_is_a_message_not_an_error(
    client: Client, make_user: UserFactory, region: Region
) -> None:
    board = make_user(Role.GOVERNANCE_BOARD)
    policy = services.policy_create_draft(actor=board, hospital_id=region.a.pk)
    signed_in(client, board)
    response = client.post(reverse("govweb:policy-publish", args=[policy.pk]), follow=True)
    assert response.status_code == 200
    assert "only approved policies can be published" in response.content.decode()
    response = client.post(
        reverse("govweb:policy-decide", args=[policy.pk]), {"decision": "maybe"}, follow=True
    )
    assert "Choose Approve or Reject" in response.content.decode()


def test_the_author_cannot_approve_their_own_policy(
    client: Client, make_user: UserFactory, region: Region
) -> None:
    author = make_user(Role.GOVERNANCE_BOARD)
    policy = services.policy_create_draft(actor=author, hospital_id=region.a.pk)
    services.policy_submit(actor=author, policy=policy)
    signed_in(client, author)
    page = client.get(reverse("govweb:policy-detail", args=[policy.pk])).content.decode()
    assert 'value="approve"' not in page
    assert "another board member must approve" in page
    response = client.post(
        reverse("govweb:policy-decide", args=[policy.pk]), {"decision": "approve"}, follow=True
    )
    assert "the author of a policy cannot approve it" in response.content.decode()
    policy.refresh_from_db()
    assert policy.status == PolicyStatus.REVIEW


def test_diff_and_preview_of_a_draft(
    client: Client, make_user: UserFactory, region: Region
) -> None:
    board = make_user(Role.GOVERNANCE_BOARD)
    first = services.policy_create_draft(actor=board, hospital_id=region.a.pk)
    document = copy.deepcopy(first.document)
    document["records"]["census"]["peer_hospitals"]["small_cell_threshold"] = 20
    second = services.policy_create_draft(actor=board, hospital_id=region.a.pk, document=document)
    signed_in(client, board)
    diff = client.get(reverse("govweb:policy-diff", args=[second.pk])).content.decode()
    assert "records.census.peer_hospitals.small_cell_threshold" in diff
    assert "<del>10</del>" in diff
    assert "<ins>20</ins>" in diff
    assert "Compared with v1" in diff
    preview = client.get(reverse("govweb:policy-preview", args=[second.pk]))
    assert preview.status_code == 200
    assert "records in" in preview.content.decode()
    assert "regional operations" in preview.content.decode()


def test_bad_posts_re_render_with_errors(
    client: Client, make_user: UserFactory, region: Region
) -> None:
    signed_in(client, make_user(Role.GOVERNANCE_BOARD))
    response = client.post(reverse("govweb:policies"), {"hospital": "999999"})
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    response = client.post(
        reverse("govweb:erasure"), {"hospital": region.a.pk, "surrogate_id": "  "}
    )
    assert response.status_code == 200
    assert (
        "This field is required" in response.content.decode()
        or "Enter the surrogate id" in response.content.decode()
    )
    response = client.post(reverse("govweb:retention"), {})
    assert response.status_code == 200
    response = client.post(reverse("govweb:retention"), {"mode": "real"})
    assert response.status_code == 200
    assert "Tick this box" in response.content.decode()
    assert not RetentionRun.objects.exists()


def test_erasure_through_the_screens(
    client: Client,
    make_user: UserFactory,
    region: Region,
    control_messages: list[Any],
    django_capture_on_commit_callbacks: Any,
) -> None:
    signed_in(client, make_user(Role.GOVERNANCE_BOARD))
    response = client.post(
        reverse("govweb:erasure"),
        {"hospital": region.a.pk, "surrogate_id": "sg-synthetic-001", "reason": "test"},
    )
    assert response.status_code == 302
    detail = response["Location"]
    erasure_id = detail.rstrip("/").rsplit("/", 1)[-1]
    # Executing before approval is refused with a message.
    refused = client.post(reverse("govweb:erasure-execute", args=[erasure_id]), follow=True)
    assert "only approved requests can be executed" in refused.content.decode()
    client.post(reverse("govweb:erasure-approve", args=[erasure_id]))
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("govweb:erasure-execute", args=[erasure_id]))
    page = client.get(detail).content.decode()
    assert "Waiting for" in page
    assert len(control_messages) == 1
    reject = client.post(
        reverse("govweb:erasure-reject", args=[erasure_id]), {"reason": "x"}, follow=True
    )
    assert "cannot be rejected" in reject.content.decode()
    from governance.models import ErasureRequest

    assert ErasureRequest.objects.get(pk=erasure_id).status == ErasureStatus.EXECUTED


def test_a_dry_run_from_the_screen_writes_a_report(client: Client, make_user: UserFactory) -> None:
    signed_in(client, make_user(Role.GOVERNANCE_BOARD))
    response = client.post(reverse("govweb:retention"), {"mode": "dry"})
    run = RetentionRun.objects.get()
    assert run.dry_run
    assert response["Location"] == reverse("govweb:retention-detail", args=[run.pk])
    html = client.get(response["Location"]).content.decode()
    assert "governance_auditevent" in html


def test_a_rejected_policy_can_be_redrafted(
    client: Client, make_user: UserFactory, region: Region
) -> None:
    author, member = make_user(Role.GOVERNANCE_BOARD), make_user(Role.GOVERNANCE_BOARD)
    policy = services.policy_create_draft(actor=author, hospital_id=region.a.pk)
    services.policy_submit(actor=author, policy=policy)
    signed_in(client, member)
    client.post(
        reverse("govweb:policy-decide", args=[policy.pk]),
        {"decision": "reject", "comment": "Too much detail for peers."},
    )
    policy.refresh_from_db()
    assert policy.status == PolicyStatus.REJECTED
    page = client.get(reverse("govweb:policy-detail", args=[policy.pk])).content.decode()
    assert "Too much detail for peers." in page
    assert "Start the next version from this one" in page
    response = client.post(reverse("govweb:policy-redraft", args=[policy.pk]))
    draft = SharingPolicy.objects.get(hospital_id=region.a.pk, version=2)
    assert response["Location"] == reverse("govweb:policy-detail", args=[draft.pk])
    assert draft.status == PolicyStatus.DRAFT
    assert draft.document == policy.document


def test_the_audit_log_is_paginated_and_keeps_the_search(
    client: Client, make_user: UserFactory
) -> None:
    board = make_user(Role.GOVERNANCE_BOARD)
    for n in range(55):
        audit.record(actor=board, action="test.many", target=f"row-{n}")
    signed_in(client, board)
    first = client.get(reverse("govweb:audit"), {"action": "test.many"}).content.decode()
    assert "55 events" in first
    assert "row-54" in first
    assert "row-4<" not in first
    assert "action=test.many&amp;page=2" in first
    second = client.get(reverse("govweb:audit"), {"action": "test.many", "page": "2"})
    assert "row-4<" in second.content.decode()
    assert "row-54" not in second.content.decode()


def test_rejecting_an_erasure_needs_a_reason(
    client: Client, make_user: UserFactory, region: Region
) -> None:
    board = make_user(Role.GOVERNANCE_BOARD)
    erasure = services.erasure_request_create(
        actor=board, hospital_id=region.a.pk, surrogate_id="sg-synthetic-9", origin="board"
    )
    signed_in(client, board)
    url = reverse("govweb:erasure-reject", args=[erasure.pk])
    response = client.post(url, {"reason": ""})
    assert response.status_code == 200
    assert "This field is required" in response.content.decode()
    client.post(url, {"reason": "Duplicate of another request."})
    erasure.refresh_from_db()
    assert erasure.status == ErasureStatus.REJECTED
    page = client.get(reverse("govweb:erasure-detail", args=[erasure.pk])).content.decode()
    assert "Rejected: nothing was erased." in page
    assert "sg-synthetic-9" not in page  # the surrogate itself is never shown


def test_the_structured_editor_saves_rules_and_places_the_validators_complaint(
    client: Client, make_user: UserFactory, region: Region
) -> None:
    board = make_user(Role.GOVERNANCE_BOARD)
    policy = services.policy_create_draft(actor=board, hospital_id=region.a.pk)
    signed_in(client, board)
    url = reverse("govweb:policy-rules", args=[policy.pk])
    form = client.get(url).context["form"]
    data = {name: form[name].value() for name in form.fields if form[name].value() is not None}
    data["census__peer_hospitals__threshold"] = 25
    data["retention__flow_records_months"] = 18
    bad = dict(data, flow__public_benchmarks__granularity="day")
    response = client.post(url, bad)
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert "flow__public_benchmarks__granularity" in errors
    response = client.post(url, data)
    assert response.status_code == 302
    policy.refresh_from_db()
    assert policy.document["records"]["census"]["peer_hospitals"]["small_cell_threshold"] == 25
    assert policy.document["retention"] == {"flow_records_months": 18}


def test_a_valid_json_document_is_saved(
    client: Client, make_user: UserFactory, region: Region
) -> None:
    board = make_user(Role.GOVERNANCE_BOARD)
    policy = services.policy_create_draft(actor=board, hospital_id=region.a.pk)
    signed_in(client, board)
    document = copy.deepcopy(policy.document)
    document["records"]["flow"]["peer_hospitals"]["k"] = 11
    response = client.post(
        reverse("govweb:policy-edit", args=[policy.pk]),
        {"document": json.dumps(document), "note": "k up", "effective_at": ""},
    )
    assert response.status_code == 302
    policy.refresh_from_db()
    assert policy.document["records"]["flow"]["peer_hospitals"]["k"] == 11
    assert policy.note == "k up"


@pytest.mark.parametrize("editor", ["govweb:policy-edit", "govweb:policy-rules"])
def test_only_a_draft_opens_in_the_editors(
    client: Client, make_user: UserFactory, region: Region, editor: str
) -> None:
    board = make_user(Role.GOVERNANCE_BOARD)
    policy = services.policy_create_draft(actor=board, hospital_id=region.a.pk)
    services.policy_submit(actor=board, policy=policy)
    signed_in(client, board)
    response = client.get(reverse(editor, args=[policy.pk]), follow=True)
    assert response.redirect_chain[-1][0] == reverse("govweb:policy-detail", args=[policy.pk])
    assert "Only drafts can be edited; this version is review." in response.content.decode()
