"""The governance screens in a real browser: a policy drafted, approved by another board
member and published; an erasure request taken to closed; the audit log searched and its
chain verified; a retention dry run. Every screen is saved in screenshots/gov-*.png."""

from __future__ import annotations

from typing import Any

import pytest

from governance import services
from governance.models import (
    BoardQuorum,
    ErasureRequest,
    ErasureStatus,
    PolicyStatus,
    SharingPolicy,
)
from governance.roles import Role
from tests.governance.conftest import Region, UserFactory
from tests.hub.web.conftest import Login, Shot

pytestmark = [
    pytest.mark.browser,
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("governance_keys"),
]


def _accept_confirmations(page: Any) -> None:
    page.on("dialog", lambda dialog: dialog.accept())


def _sign_out(page: Any) -> None:
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_load_state("networkidle")


def _message(page: Any) -> str:
    return str(page.locator(".messages").inner_text())


def _fits_a_laptop(page: Any) -> None:
    """At 1366x768 the page scrolls down, never sideways."""
    page.set_viewport_size({"width": 1366, "height": 768})
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 1366, f"the page is {width}px wide on a laptop"


def _published_v1(region: Region, make_user: UserFactory) -> SharingPolicy:
    author, member = make_user(Role.GOVERNANCE_BOARD), make_user(Role.GOVERNANCE_BOARD)
    policy = services.policy_create_draft(
        actor=author, hospital_id=region.a.pk, note="First policy for the synthetic site."
    )
    services.policy_submit(actor=author, policy=policy)
    policy = services.policy_decide(actor=member, policy=policy, approve=True)
    return services.policy_publish(actor=member, policy=policy)


def test_draft_approve_and_publish_a_policy(
    page: Any,
    shot: Shot,
    login: Login,
    region: Region,
    make_user: UserFactory,
    control_messages: list[Any],
) -> None:
    # One approval (not the author's) publishes in this region: four eyes, two people.
    BoardQuorum.objects.create(region_id=region.a.region_id, quorum=1)
    v1 = _published_v1(region, make_user)
    author = make_user(Role.GOVERNANCE_BOARD)
    approver = make_user(Role.GOVERNANCE_BOARD)
    _accept_confirmations(page)

    login(page, author)
    page.goto("/governance/policies/")
    assert page.get_by_role("link", name="Sharing policies").count() >= 1
    page.locator("#id_hospital").select_option(str(region.a.pk))
    page.get_by_label("Note (why this change)").fill("Peer hospitals: coarser small cells.")
    shot(page, "gov-policies-list")
    page.get_by_role("button", name="Create draft").click()
    assert "Draft created" in _message(page)
    draft = SharingPolicy.objects.get(hospital_id=region.a.pk, version=2)
    assert draft.status == PolicyStatus.DRAFT
    shot(page, "gov-policy-draft")

    # The JSON editor refuses a broken document next to the field.
    page.get_by_role("link", name="Edit JSON").first.click()
    editor = page.get_by_label("Policy document (JSON)")
    editor.fill('{"records": ')
    page.get_by_role("button", name="Format JSON").click()
    assert "Not valid JSON" in page.locator(".gov-format-status").inner_text()
    page.get_by_role("button", name="Save draft").click()
    assert "Not valid JSON" in page.locator(".gov-field.has-error").inner_text()
    shot(page, "gov-policy-edit-error")

    # The structured editor: the validator's complaint lands on its row, then a fix saves.
    page.get_by_role("link", name="Edit rules").click()
    page.get_by_label("Dates by (flow, public_benchmarks)").select_option("day")
    page.get_by_label("Minimum cell size (census, peer_hospitals)").fill("20")
    page.locator("#census__public_benchmarks-fields").get_by_label("available_beds").uncheck()
    page.get_by_role("button", name="Save rules").click()
    bad_row = page.locator("tr.has-error")
    assert bad_row.count() == 1
    assert "public releases keep the year only" in bad_row.inner_text()
    shot(page, "gov-policy-rules-error")
    page.get_by_label("Dates by (flow, public_benchmarks)").select_option("year")
    shot(page, "gov-policy-rules")
    page.get_by_role("button", name="Save rules").click()
    assert "Sharing rules saved" in _message(page)
    draft.refresh_from_db()
    assert draft.document["records"]["census"]["peer_hospitals"]["small_cell_threshold"] == 20

    page.get_by_role("link", name="Changes").click()
    rows = page.locator("table.gov-diff tbody tr")
    assert rows.count() == 2
    assert "Compared with v1" in page.locator("main h2").first.inner_text()
    shot(page, "gov-policy-diff")

    page.get_by_role("link", name="Preview on sample data").click()
    assert int(page.locator(".gov-kpis .num").first.inner_text()) > 0
    shot(page, "gov-policy-preview")

    page.get_by_role("link", name="Overview").click()
    page.get_by_role("button", name="Submit for review").click()
    assert "Submitted" in _message(page)
    assert page.get_by_role("button", name="Approve").count() == 0  # the author cannot
    shot(page, "gov-policy-review-author")
    _sign_out(page)

    login(page, approver)
    page.goto(f"/governance/policies/{draft.pk}/")
    page.get_by_label("Comment").fill("Checked the diff and the preview.")
    shot(page, "gov-policy-review")
    page.get_by_role("button", name="Approve").click()
    assert "Approval recorded" in _message(page)
    page.get_by_role("button", name="Publish").click()
    assert "Published" in _message(page)
    draft.refresh_from_db()
    v1.refresh_from_db()
    assert draft.status == PolicyStatus.PUBLISHED
    assert v1.status == PolicyStatus.SUPERSEDED
    assert [m["site_code"] for m in control_messages] == [region.a.site_code] * 2
    shot(page, "gov-policy-published")
    page.goto("/governance/policies/")
    assert "in force" in page.locator("tbody tr").first.inner_text()
    shot(page, "gov-policies-after")
    page.goto(f"/governance/policies/{draft.pk}/")
    _fits_a_laptop(page)
    shot(page, "gov-policy-laptop")


def test_an_erasure_request_taken_to_done(
    page: Any,
    shot: Shot,
    login: Login,
    region: Region,
    make_user: UserFactory,
    control_messages: list[Any],
) -> None:
    board = make_user(Role.GOVERNANCE_BOARD)
    # Another request, overdue, so the list shows more than one state.
    services.erasure_request_create(
        actor=board, hospital_id=region.b.pk, surrogate_id="sg-synthetic-old", origin="site"
    )
    ErasureRequest.objects.update(due_at="2020-01-01T00:00:00Z")
    _accept_confirmations(page)
    login(page, board)
    page.goto("/governance/erasure/")
    page.get_by_role("button", name="Open request").click()
    assert page.locator(".gov-field.has-error").count() == 2  # hospital and surrogate
    page.get_by_label("Hospital").select_option(str(region.a.pk))
    page.get_by_label("Patient surrogate id").fill("sg-synthetic-4711")
    page.get_by_label("Reason").fill("Patient withdrew consent (synthetic).")
    shot(page, "gov-erasure-list")
    page.get_by_role("button", name="Open request").click()
    assert "Erasure request opened" in _message(page)
    erasure = ErasureRequest.objects.get(hospital_id=region.a.pk)
    shot(page, "gov-erasure-received")

    page.get_by_role("button", name="Approve").click()
    assert "Approved" in _message(page)
    page.get_by_role("button", name="Execute erasure").click()
    assert "Executed" in _message(page)
    erasure.refresh_from_db()
    assert erasure.status == ErasureStatus.EXECUTED
    assert len(control_messages) == 1
    shot(page, "gov-erasure-executed")

    # The site confirms through the site API (here: its service call).
    services.erasure_request_confirm(
        actor=None,
        erasure=erasure,
        evidence={
            "method": "crypto-shredding",
            "erased_at": "2026-11-23T22:00:00Z",
            "evidence_sha256": "ab" * 32,
        },
    )
    page.reload()
    assert "Done" in page.locator(".gov-side").inner_text()
    assert "crypto-shredding" in page.locator("main").inner_text()
    shot(page, "gov-erasure-closed")
    page.goto("/governance/erasure/")
    assert page.locator("tbody tr").count() == 2
    assert "overdue" in page.locator("tbody").inner_text()
    shot(page, "gov-erasure-list-after")


def test_search_the_audit_log_and_verify_the_chain(
    page: Any, shot: Shot, login: Login, region: Region, make_user: UserFactory
) -> None:
    # (The audit table is not flushed between tests: searches name this test's hospital.)
    board = make_user(Role.GOVERNANCE_BOARD)
    auditor = make_user(Role.AUDITOR)
    policy = services.policy_create_draft(actor=board, hospital_id=region.a.pk)
    services.policy_submit(actor=board, policy=policy)
    services.audit_link()
    login(page, auditor)
    assert page.url.endswith("/governance/audit/")  # the auditor's landing page
    shot(page, "gov-audit")
    page.get_by_label("Action").fill("policy.submit")
    page.locator("#id_hospital").select_option(str(region.a.pk))
    page.get_by_role("button", name="Search").click()
    rows = page.locator("table.gov-audit tbody tr")
    assert rows.count() == 1
    assert "policy.submit" in rows.first.inner_text()
    shot(page, "gov-audit-search")
    with page.expect_download() as download:
        page.get_by_role("button", name="Export").click()
    assert download.value.suggested_filename.endswith(".csv")
    page.get_by_role("button", name="Verify the chain").click()
    result = page.locator("#verify-result")
    result.get_by_text("The audit chain is intact").wait_for()
    assert "linked event" in result.inner_text()
    shot(page, "gov-audit-verified")
    _fits_a_laptop(page)
    shot(page, "gov-audit-laptop")


def test_start_a_retention_dry_run(
    page: Any, shot: Shot, login: Login, make_user: UserFactory
) -> None:
    login(page, make_user(Role.GOVERNANCE_BOARD))
    page.goto("/governance/retention/")
    shot(page, "gov-retention-empty")
    page.get_by_role("radio", name="Real run").check()
    page.get_by_role("button", name="Start").click()
    assert "Tick this box" in page.locator(".has-error").inner_text()
    page.get_by_role("radio", name="Dry run").check()
    page.get_by_role("button", name="Start").click()
    assert "Dry run finished" in _message(page)
    assert "governance_auditevent" in page.locator("main").inner_text()
    shot(page, "gov-retention-run")
    page.goto("/governance/retention/")
    assert page.locator("tbody tr").count() == 1
    shot(page, "gov-retention-list")
