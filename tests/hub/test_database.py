import pytest
from django.contrib.auth.models import Group
from django.db import connection

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def test_the_hub_runs_on_postgresql() -> None:
    assert connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version_num")
        (version,) = cursor.fetchone()
    assert int(version) >= 150000


def test_a_row_round_trips_through_postgresql() -> None:
    Group.objects.create(name="regional operators – night shift")
    fetched = Group.objects.get(name__startswith="regional operators")
    assert fetched.name == "regional operators – night shift"
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM auth_group WHERE id = %s", [fetched.pk])
        assert cursor.fetchone() == ("regional operators – night shift",)
