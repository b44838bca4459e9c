"""restrict() and can(): who sees which hospitals and units, per role."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser, Group

from governance import access, conf
from governance.actions import Level, UnknownAction, register_action
from governance.roles import Role
from tests.governance.conftest import Region, UserFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def units(user: Any, action: str = "read_census") -> set[Any]:
    qs = access.restrict(conf.unit_model()._default_manager.all(), user, action)
    return set(qs.values_list("pk", flat=True))


def hospitals(user: Any, action: str = "read_hospitals") -> set[Any]:
    qs = access.restrict(conf.hospital_model()._default_manager.all(), user, action)
    return set(qs.values_list("pk", flat=True))


def test_regional_operator_sees_every_hospital_and_unit(region: Region, make_user: UserFactory):
    op = make_user(Role.REGIONAL_OPERATOR)
    assert {region.a.pk, region.b.pk} <= hospitals(op)
    assert {region.a_ed.pk, region.b_ward.pk} <= units(op)


def test_ed_staff_see_their_hospitals_ed_units_only(region: Region, make_user: UserFactory):
    ed = make_user(Role.ED_STAFF, hospital=region.a)
    assert units(ed) == {region.a_ed.pk}
    assert hospitals(ed) == {region.a.pk}


def test_ed_staff_cannot_read_another_hospital(region: Region, make_user: UserFactory):
    ed = make_user(Role.ED_STAFF, hospital=region.a)
    assert not access.can(ed, "read_census", region.b_ed)
    assert access.can(ed, "read_census", region.a_ed)


def test_ward_nurse_sees_only_their_ward(region: Region, make_user: UserFactory):
    nurse = make_user(Role.WARD_NURSE, unit=region.a_ward)
    assert units(nurse) == {region.a_ward.pk}
    assert not access.can(nurse, "read_census", region.a_ward2)
    assert not access.can(nurse, "read_census", region.a_ed)


def test_executive_gets_aggregates_of_their_hospital_and_no_record_level_rows(
    region: Region, make_user: UserFactory
):
    cfo = make_user(Role.EXECUTIVE, hospital=region.a)
    assert units(cfo, "read_census") == set()
    assert units(cfo, "read_flow") == set()
    assert hospitals(cfo, "read_aggregates") == {region.a.pk}
    assert access.can(cfo, "read_aggregates")
    assert not access.can(cfo, "read_census")


def test_site_agent_reaches_its_own_site_through_site_actions_only(
    region: Region, make_user: UserFactory
):
    agent = make_user(Role.SITE_AGENT, hospital=region.a)
    assert units(agent, "site_push") == {region.a_ed.pk, region.a_ward.pk, region.a_ward2.pk}
    assert units(agent, "read_census") == set()
    assert not access.can(agent, "read_census")


def test_board_and_auditor_have_governance_actions_not_operations(
    region: Region, make_user: UserFactory
):
    board, auditor = make_user(Role.GOVERNANCE_BOARD), make_user(Role.AUDITOR)
    assert access.can(board, "approve_policy")
    assert access.can(board, "read_audit")
    assert access.can(auditor, "read_audit")
    assert not access.can(auditor, "read_policy")
    assert not access.can(board, "read_census")
    assert not access.can(auditor, "read_census")


def test_anonymous_inactive_and_roleless_users_see_nothing(region: Region, make_user: UserFactory):
    nobody = make_user()
    inactive = make_user(Role.REGIONAL_OPERATOR)
    inactive.is_active = False
    for user in (AnonymousUser(), None, nobody, inactive):
        assert units(user) == set()
        assert not access.can(user, "read_census")


def test_superuser_sees_everything(region: Region, make_user: UserFactory):
    root = make_user(superuser=True)
    assert {region.a_ed.pk, region.b_ward.pk} <= units(root)


def test_grants_go_to_groups_and_can_be_revoked(region: Region, make_user: UserFactory):
    ed = make_user(Role.ED_STAFF, hospital=region.a)
    group = Group.objects.get(name=f"ed_staff@{region.a._meta.label_lower}:{region.a.pk}")
    assert ed.groups.filter(pk=group.pk).exists()
    assert access.roles_of(ed) == {Role.ED_STAFF}
    access.revoke_hospital(ed, region.a, Role.ED_STAFF)
    assert units(ed) == set()


def test_a_shared_group_can_be_granted_a_hospital(region: Region, make_user: UserFactory):
    team = Group.objects.create(name="synthetic ED night team")
    access.grant_hospital(team, region.b, Role.ED_STAFF)
    user = make_user()
    user.groups.add(team)
    assert units(user) == {region.b_ed.pk}
    with pytest.raises(ValueError, match="holds role"):
        access.grant_hospital(team, region.b, Role.EXECUTIVE)


def test_wrong_grants_are_refused(region: Region, make_user: UserFactory):
    user = make_user()
    with pytest.raises(ValueError, match="grant_unit"):
        access.grant_hospital(user, region.a, Role.WARD_NURSE)
    with pytest.raises(ValueError, match="region-wide"):
        access.grant_hospital(user, region.a, Role.REGIONAL_OPERATOR)
    with pytest.raises(TypeError):
        access.grant_hospital(user, region.a_ward, Role.ED_STAFF)


def test_unknown_actions_are_refused(region: Region, make_user: UserFactory):
    with pytest.raises(UnknownAction):
        access.restrict(conf.unit_model()._default_manager.all(), make_user(), "read_everything")


def test_roles_cannot_be_widened_by_registering_actions() -> None:
    with pytest.raises(ValueError, match="aggregate"):
        register_action("peek_records", roles={Role.EXECUTIVE}, level=Level.RECORD)
    with pytest.raises(ValueError, match="read-only"):
        register_action("edit_audit", roles={Role.AUDITOR}, level=Level.GOVERNANCE, write=True)


def test_ensure_roles_is_idempotent_and_gives_model_permissions(db: None) -> None:
    first = access.ensure_roles()
    second = access.ensure_roles()
    assert first == second
    assert first[Role.AUDITOR].permissions.filter(codename="view_auditevent").exists()
    assert not first[Role.AUDITOR].permissions.filter(codename="change_sharingpolicy").exists()


def test_scope_is_plain_id_lists_for_time_series(region: Region, make_user: UserFactory):
    ed = make_user(Role.ED_STAFF, hospital=region.a)
    scope = access.scope_for(ed, "read_census")
    assert scope.unit_ids == {region.a_ed.pk}
    assert not scope.all
    assert not scope.hospital_ids
