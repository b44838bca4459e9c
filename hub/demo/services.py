"""Creating the demo's administrator and its users, one per role."""

import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from django.contrib.auth import get_user_model
from django.db import transaction

from governance import access
from governance.roles import Role
from hub.registry.models import Hospital, Unit


@dataclass(frozen=True)
class AdminAccount:
    username: str
    password: str | None  # only when it was created now; never stored in the database clear
    password_file: Path


@transaction.atomic
def demo_admin_ensure(*, username: str, password_file: Path) -> AdminAccount:
    """Create the superuser with a generated password once; later calls change nothing.

    The password is written to a 0600 file in the git-ignored local folder, so a user who
    missed the first print can still log in.
    """
    user_model = get_user_model()
    if user_model.objects.filter(username=username).exists():
        return AdminAccount(username, None, password_file)
    password = secrets.token_urlsafe(18)
    user_model.objects.create_superuser(username=username, email="", password=password)
    _write_passwords(password_file, password + "\n")
    return AdminAccount(username, password, password_file)


# --- one user per role ------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoUserSpec:
    username: str
    role: Role
    scope: Literal["region", "hospital", "ward"]  # hospital: the first seeded; ward: one of its


DEMO_USERS: tuple[DemoUserSpec, ...] = (
    DemoUserSpec("ops", Role.REGIONAL_OPERATOR, "region"),
    DemoUserSpec("board", Role.GOVERNANCE_BOARD, "region"),
    DemoUserSpec("auditor", Role.AUDITOR, "region"),
    DemoUserSpec("exec1", Role.EXECUTIVE, "hospital"),
    DemoUserSpec("ed1", Role.ED_STAFF, "hospital"),
    DemoUserSpec("nurse1", Role.WARD_NURSE, "ward"),
)


@dataclass(frozen=True)
class DemoUser:
    username: str
    role: Role
    grant: str  # what the user reaches, in words ("the region", "NY330234", "NY330234/MS01")
    created: bool
    password_set: bool  # a new password was generated (and written to the file) this run


@dataclass(frozen=True)
class DemoUsers:
    users: list[DemoUser]
    skipped: list[str]  # usernames left out, with no hospital (or ward) seeded to grant
    password_file: Path


def _read_passwords(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if len(parts) >= 2:
            out[parts[0]] = parts[1]
    return out


def _write_passwords(path: Path, content: str) -> None:
    """Replace the file atomically, created 0600 (never world-readable, not even briefly)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(content)
    os.replace(tmp, path)
    path.chmod(0o600)


def first_hospital() -> Hospital | None:
    """The first hospital seeded (``seed_region`` creates the biggest first)."""
    return Hospital.objects.filter(active=True).order_by("pk").first()


def first_ward(hospital: Hospital) -> Unit | None:
    wards = Unit.objects.filter(hospital=hospital, active=True).order_by("code")
    return (
        wards.filter(unit_type="medical_surgical").first()
        or wards.exclude(unit_type="emergency").first()
    )


@transaction.atomic
def demo_users_ensure(*, password_file: Path, hospital: Hospital | None = None) -> DemoUsers:
    """One user per role for the demo, with roles and grants through ``governance.access``.

    Idempotent: a user that exists and whose password is in ``password_file`` keeps it; a
    user new, or missing from the file (the file was lost), gets a generated password,
    written to the file (0600, ``username password role`` per line). Grants are re-applied
    each run, so a user whose grant was lost gets it back. Hospital users are left out,
    and said so, while no hospital is seeded.
    """
    user_model = get_user_model()
    hospital = hospital or first_hospital()
    ward = first_ward(hospital) if hospital is not None else None
    known = _read_passwords(password_file)
    lines: list[str] = []
    users: list[DemoUser] = []
    skipped: list[str] = []
    targets: dict[str, Hospital | Unit | None] = {
        "region": None,
        "hospital": hospital,
        "ward": ward,
    }
    for spec in DEMO_USERS:
        target = targets[spec.scope]
        if spec.scope != "region" and target is None:
            skipped.append(spec.username)
            continue
        user, created = user_model.objects.get_or_create(username=spec.username)
        password = known.get(spec.username)
        fresh = created or password is None or not user.check_password(password)
        if fresh:
            password = secrets.token_urlsafe(18)
            user.set_password(password)
            user.save(update_fields=["password"])
        if isinstance(target, Hospital):
            access.grant_hospital(user, target, spec.role)
            grant = target.site_code
        elif isinstance(target, Unit):
            access.grant_unit(user, target, spec.role)
            grant = f"{target.hospital.site_code}/{target.code}"
        else:
            access.assign_role(user, spec.role)
            grant = "the region"
        lines.append(f"{spec.username} {password} {spec.role.value}")
        users.append(DemoUser(spec.username, spec.role, grant, created, fresh))
    # Lines of users this run did not handle (skipped now, say, but created by an earlier
    # run) are kept, so no working password is ever lost from the file.
    existing = password_file.read_text(encoding="utf-8") if password_file.exists() else ""
    handled = {u.username for u in users}
    lines += [line for line in existing.splitlines() if line and line.split()[0] not in handled]
    content = "".join(f"{line}\n" for line in lines)
    if content != existing:
        _write_passwords(password_file, content)
    return DemoUsers(users=users, skipped=skipped, password_file=password_file)
