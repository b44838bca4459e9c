"""Enrolment tokens are single-use and expire; revocation ends a credential."""

from __future__ import annotations

from datetime import timedelta

import pytest

from deid.signing import generate_signing_key, public_key_b64
from hub.registry import selectors, services
from hub.registry.services import RegistryError
from tests.hub.support import hospital_with_units

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def key() -> str:
    return public_key_b64(generate_signing_key())


def test_a_token_enrols_once() -> None:
    ticket = services.agent_enrolment_issue(hospital=hospital_with_units(), name="a")
    credential = services.agent_enrol(token=ticket.token, public_key=key())
    assert selectors.agent_by_credential(credential.credential) == credential.agent
    with pytest.raises(RegistryError):
        services.agent_enrol(token=ticket.token, public_key=key())


def test_an_expired_token_is_refused() -> None:
    ticket = services.agent_enrolment_issue(
        hospital=hospital_with_units(), name="a", ttl=timedelta(seconds=-1)
    )
    with pytest.raises(RegistryError, match="expired"):
        services.agent_enrol(token=ticket.token, public_key=key())


def test_revoking_ends_the_credential_and_the_key() -> None:
    hospital = hospital_with_units()
    credential = services.agent_register(hospital=hospital, name="a", public_key=key())
    assert selectors.site_verification_keys(hospital.site_code)[1]
    services.agent_revoke(agent=credential.agent)
    assert selectors.agent_by_credential(credential.credential) is None
    assert selectors.site_verification_keys(hospital.site_code)[1] == {}


def test_an_enrolled_agent_gets_the_site_agent_role_on_its_hospital_only() -> None:
    from governance.access import can

    hospital = hospital_with_units()
    other = hospital_with_units()
    agent = services.agent_register(hospital=hospital, name="a", public_key=key()).agent
    assert agent.service_user is not None
    assert can(agent.service_user, "site_push", hospital)
    assert not can(agent.service_user, "site_push", other)
    assert not can(agent.service_user, "read_census")
