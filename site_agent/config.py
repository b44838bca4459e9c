"""Agent configuration: one TOML file (read with ``tomllib``) plus a few environment overrides.

See ``site_agent/examples/*.toml`` and docs/site_agent.md for the format. Environment variables
win over the file for what differs between machines of the same site: ``KAFKA_BOOTSTRAP_SERVERS``
(when the file leaves ``[kafka] bootstrap_servers`` out), ``KAFKA_SASL_PASSWORD`` /
``KAFKA_SASL_PASSWORD_FILE``, ``SITE_AGENT_DATA_DIR``, ``SITE_AGENT_DATABASE_URL``,
``DEID_KEYSTORE`` (the key store shared with the DE-ID worker), ``DEID_MASTER_KEY`` /
``DEID_MASTER_KEY_FILE``, ``SITE_AGENT_HUB_URL``, ``SITE_AGENT_HUB_CREDENTIAL`` /
``SITE_AGENT_HUB_CREDENTIAL_FILE`` and ``DEID_GOVERNANCE_PUBLIC_KEYS`` (``_FILE``) for the hub's
directives (see site_agent/directives.py).
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from deid.kafka_security import KafkaSecurityError, kafka_security_config
from site_agent.vocabulary import UNIT_TYPES, is_ed

__all__ = [
    "AgentConfig",
    "BedConfig",
    "ConfigError",
    "FhirConfig",
    "ForecastConfig",
    "HubConfig",
    "KafkaConfig",
    "MllpConfig",
    "UnitConfig",
    "load_config",
    "parse_config",
]

_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}\Z")


class ConfigError(ValueError):
    """The configuration file is wrong; the message says where."""


@dataclass(frozen=True, slots=True)
class BedConfig:
    room: str
    bed: str
    licensed: bool = True
    staffed: bool = True
    surge: bool = False


@dataclass(frozen=True, slots=True)
class UnitConfig:
    code: str
    unit_type: str
    name: str
    aliases: tuple[str, ...] = ()
    beds: tuple[BedConfig, ...] = ()
    # The unit of the simulation scenario that models this one (forecasts); "" = not modelled.
    forecast_unit: str = ""

    @property
    def is_ed(self) -> bool:
        return is_ed(self.unit_type)


@dataclass(frozen=True, slots=True)
class MllpConfig:
    host: str = "127.0.0.1"
    port: int = 2575
    max_message_bytes: int = 1_048_576
    idle_timeout_seconds: float = 300.0
    max_connections: int = 2000
    # How many unanswered messages one connection may have before we stop reading from it.
    max_in_flight: int = 64


@dataclass(frozen=True, slots=True)
class FhirConfig:
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 8081
    max_body_bytes: int = 5_242_880
    poll_base_url: str = ""
    poll_interval_seconds: float = 60.0
    poll_token_env: str = ""


@dataclass(frozen=True, slots=True)
class KafkaConfig:
    bootstrap_servers: str = "127.0.0.1:9092"
    # Extra librdkafka settings (security.protocol, ssl.*, sasl.*): from the file, never secrets.
    extra: Mapping[str, str] = field(default_factory=dict)
    max_in_flight_records: int = 20_000


@dataclass(frozen=True, slots=True)
class ForecastConfig:
    """Forecasts from the ``simulation`` package; off unless a scenario is named."""

    scenario: str = ""
    interval_minutes: float = 15.0
    horizon_hours: int = 6
    replications: int = 30

    @property
    def enabled(self) -> bool:
        return bool(self.scenario)


@dataclass(frozen=True, slots=True)
class HubConfig:
    """The regional hub's site API, for directives (diversion, erasure). Off without a URL.

    The credential is the one the site received at enrolment (a file, 0600, next to the
    config in the demo); the governance public keys are the trust anchors for erasure
    directives — the same keys the DE-ID worker trusts for policies (``--governance-key``).
    """

    url: str = ""
    credential_file: Path | None = None
    credential: str = field(default="", repr=False)
    governance_keys: tuple[str, ...] = ()
    directives_interval_seconds: float = 30.0
    max_backoff_seconds: float = 600.0
    timeout_seconds: float = 10.0

    @property
    def enabled(self) -> bool:
        return bool(self.url) and self.directives_interval_seconds > 0

    def read_credential(self) -> str:
        if self.credential:
            return self.credential
        if self.credential_file is None:
            raise ConfigError("hub.credential_file (or SITE_AGENT_HUB_CREDENTIAL) is not set")
        text = _read_file(str(self.credential_file))
        if not text:
            raise ConfigError(f"the hub credential file {self.credential_file} is empty")
        return text


@dataclass(frozen=True, slots=True)
class AgentConfig:
    site_code: str
    site_name: str
    timezone: ZoneInfo
    data_dir: Path
    units: tuple[UnitConfig, ...]
    database_url: str = ""
    stale_after: timedelta = timedelta(minutes=10)
    snapshot_interval: timedelta = timedelta(minutes=1)
    snapshot_min_interval: timedelta = timedelta(seconds=1)
    heartbeat_interval: timedelta = timedelta(seconds=30)
    expected_feeds: tuple[str, ...] = ()
    location_source: str = "hl7"
    bed_status_source: str = "hl7"
    # The asyncio event loop: "auto" (uvloop if installed, else asyncio), "uvloop", "asyncio".
    event_loop: str = "auto"
    forecast: ForecastConfig = field(default_factory=ForecastConfig)
    keystore_path: Path | None = None
    mllp: MllpConfig = field(default_factory=MllpConfig)
    fhir: FhirConfig = field(default_factory=FhirConfig)
    kafka: KafkaConfig = field(default_factory=KafkaConfig)
    hub: HubConfig = field(default_factory=HubConfig)

    @property
    def database_path(self) -> Path:
        return self.data_dir / "agent.sqlite3"


def _get(table: Mapping[str, Any], key: str, kind: type, default: Any, where: str) -> Any:
    value = table.get(key, default)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(f"{where}.{key} must be {kind.__name__}, got {value!r}")
    return value


def _beds(u: Mapping[str, Any], where: str) -> tuple[BedConfig, ...]:
    rooms = u.get("rooms")
    if rooms is not None:
        if not isinstance(rooms, list):
            raise ConfigError(f"{where}.rooms must be an array of tables")
        beds: list[BedConfig] = []
        for i, r in enumerate(rooms):
            w = f"{where}.rooms[{i}]"
            room = str(_get(r, "room", str, "", w))
            if not room:
                raise ConfigError(f"{w}.room is required")
            names = r.get("beds", ["1"])
            if not isinstance(names, list) or not all(isinstance(b, str) for b in names):
                raise ConfigError(f"{w}.beds must be a list of bed names")
            surge = _get(r, "surge", bool, False, w)
            licensed = _get(r, "licensed", bool, not surge, w)
            staffed = _get(r, "staffed", bool, licensed, w)
            beds.extend(BedConfig(room, b, licensed, staffed, surge) for b in names)
        return tuple(beds)
    # Generated layout: rooms numbered from room_start with beds_per_room beds (A, B, ...); the
    # first staffed_beds are staffed, the first licensed_beds licensed, then surge_beds extra.
    licensed = _get(u, "licensed_beds", int, 0, where)
    staffed = _get(u, "staffed_beds", int, licensed, where)
    surge = _get(u, "surge_beds", int, 0, where)
    per_room = _get(u, "beds_per_room", int, 1, where)
    start = _get(u, "room_start", int, 1, where)
    prefix = _get(u, "room_prefix", str, "", where)
    if min(licensed, staffed, surge) < 0 or per_room < 1:
        raise ConfigError(f"{where}: bed counts must be >= 0 and beds_per_room >= 1")
    if staffed > licensed + surge:
        raise ConfigError(f"{where}: staffed_beds exceeds licensed_beds + surge_beds")
    out: list[BedConfig] = []
    for i in range(licensed + surge):
        room = f"{prefix}{start + i // per_room}"
        bed = chr(ord("A") + i % per_room) if per_room > 1 else "1"
        out.append(
            BedConfig(room, bed, licensed=i < licensed, staffed=i < staffed, surge=i >= licensed)
        )
    return tuple(out)


def _hub(h: Mapping[str, Any], env: Mapping[str, str], base_dir: Path | None) -> HubConfig:
    url = env.get("SITE_AGENT_HUB_URL") or _get(h, "url", str, "", "hub")
    if url and not url.startswith(("http://", "https://")):
        raise ConfigError("hub.url must be an http:// or https:// URL")
    cred_file = env.get("SITE_AGENT_HUB_CREDENTIAL_FILE") or _get(
        h, "credential_file", str, "", "hub"
    )
    cred_path = Path(cred_file) if cred_file else None
    # A relative credential file is next to the config file (as seed_region writes them).
    if cred_path is not None and not cred_path.is_absolute() and base_dir is not None:
        cred_path = base_dir / cred_path
    keys = h.get("governance_keys", [])
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise ConfigError("hub.governance_keys must be a list of base64 public keys")
    from_env = env.get("DEID_GOVERNANCE_PUBLIC_KEYS") or _read_file(
        env.get("DEID_GOVERNANCE_PUBLIC_KEYS_FILE")
    )
    if from_env:
        keys = [k.strip() for k in from_env.replace("\n", ",").split(",") if k.strip()]
    interval = _get(h, "directives_interval_seconds", float, 30.0, "hub")
    if interval < 0:
        raise ConfigError("hub.directives_interval_seconds must be >= 0 (0 turns polling off)")
    return HubConfig(
        url=url.rstrip("/"),
        credential_file=cred_path,
        credential=env.get("SITE_AGENT_HUB_CREDENTIAL", ""),
        governance_keys=tuple(keys),
        directives_interval_seconds=interval,
        max_backoff_seconds=_get(h, "max_backoff_seconds", float, 600.0, "hub"),
        timeout_seconds=_get(h, "timeout_seconds", float, 10.0, "hub"),
    )


def parse_config(
    data: Mapping[str, Any],
    *,
    base_env: Mapping[str, str] | None = None,
    base_dir: Path | None = None,
) -> AgentConfig:
    env = os.environ if base_env is None else base_env
    site = data.get("site", {})
    agent = data.get("agent", {})
    code = _get(site, "code", str, "", "site")
    if not _CODE.match(code):
        raise ConfigError("site.code must be 1-32 letters, digits, '-' or '_'")
    try:
        tz = ZoneInfo(_get(site, "timezone", str, "UTC", "site"))
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"site.timezone: {exc}") from exc
    units: list[UnitConfig] = []
    seen: dict[str, str] = {}
    for i, u in enumerate(data.get("units", [])):
        where = f"units[{i}]"
        ucode = _get(u, "code", str, "", where)
        if not ucode:
            raise ConfigError(f"{where}.code is required")
        utype = _get(u, "type", str, "", where)
        if utype not in UNIT_TYPES:
            raise ConfigError(f"{where}.type {utype!r} is not one of {sorted(UNIT_TYPES)}")
        aliases = u.get("aliases", [])
        if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
            raise ConfigError(f"{where}.aliases must be a list of strings")
        for name in (ucode, *aliases):
            key = name.strip().upper()
            if key in seen and seen[key] != ucode:
                raise ConfigError(f"{where}: point of care {name!r} is also used by {seen[key]}")
            seen[key] = ucode
        units.append(
            UnitConfig(
                code=ucode,
                unit_type=utype,
                name=_get(u, "name", str, ucode, where),
                aliases=tuple(aliases),
                beds=_beds(u, where),
                forecast_unit=_get(u, "forecast_unit", str, "", where),
            )
        )
    if len({u.code for u in units}) != len(units):
        raise ConfigError("unit codes must be unique")

    m = data.get("mllp", {})
    mllp = MllpConfig(
        host=_get(m, "host", str, "127.0.0.1", "mllp"),
        port=_get(m, "port", int, 2575, "mllp"),
        max_message_bytes=_get(m, "max_message_bytes", int, 1_048_576, "mllp"),
        idle_timeout_seconds=_get(m, "idle_timeout_seconds", float, 300.0, "mllp"),
        max_connections=_get(m, "max_connections", int, 2000, "mllp"),
        max_in_flight=_get(m, "max_in_flight", int, 64, "mllp"),
    )
    f = data.get("fhir", {})
    fhir = FhirConfig(
        enabled=_get(f, "enabled", bool, True, "fhir"),
        host=_get(f, "host", str, "127.0.0.1", "fhir"),
        port=_get(f, "port", int, 8081, "fhir"),
        max_body_bytes=_get(f, "max_body_bytes", int, 5_242_880, "fhir"),
        poll_base_url=_get(f, "poll_base_url", str, "", "fhir"),
        poll_interval_seconds=_get(f, "poll_interval_seconds", float, 60.0, "fhir"),
        poll_token_env=_get(f, "poll_token_env", str, "", "fhir"),
    )
    k = data.get("kafka", {})
    bootstrap = k.get("bootstrap_servers") or env.get("KAFKA_BOOTSTRAP_SERVERS") or "127.0.0.1:9092"
    extra = k.get("producer", {})
    if not isinstance(extra, dict):
        raise ConfigError("kafka.producer must be a table of librdkafka settings")
    # The same KAFKA_SECURITY_* variables as the DE-ID worker and the hub (deid.kafka_security)
    # when the environment sets a protocol; the file's [kafka.producer] table wins over them.
    try:
        security = kafka_security_config(env) if env.get("KAFKA_SECURITY_PROTOCOL") else {}
    except KafkaSecurityError as exc:
        raise ConfigError(str(exc)) from exc
    producer = {**security, **{str(a): str(b) for a, b in extra.items()}}
    # Secrets never come from the file: the SASL password from the environment (or a file
    # named by KAFKA_SASL_PASSWORD_FILE, as Kubernetes mounts secrets).
    password = env.get("KAFKA_SASL_PASSWORD") or _read_file(env.get("KAFKA_SASL_PASSWORD_FILE"))
    if password:
        producer["sasl.password"] = password
    kafka = KafkaConfig(
        bootstrap_servers=str(bootstrap),
        extra=producer,
        max_in_flight_records=_get(k, "max_in_flight_records", int, 20_000, "kafka"),
    )
    data_dir = env.get("SITE_AGENT_DATA_DIR") or _get(
        agent, "data_dir", str, f".local/site_agent/{code}", "agent"
    )
    location_source = _get(agent, "location_source", str, "hl7", "agent")
    bed_status_source = _get(agent, "bed_status_source", str, "hl7", "agent")
    for name, value in (
        ("location_source", location_source),
        ("bed_status_source", bed_status_source),
    ):
        if value not in ("hl7", "fhir"):
            raise ConfigError(f"agent.{name} must be 'hl7' or 'fhir'")
    event_loop = _get(agent, "event_loop", str, "auto", "agent")
    if event_loop not in ("auto", "uvloop", "asyncio"):
        raise ConfigError("agent.event_loop must be 'auto', 'uvloop' or 'asyncio'")
    fc = data.get("forecast", {})
    feeds = agent.get("expected_feeds", [])
    if not isinstance(feeds, list) or not all(isinstance(x, str) for x in feeds):
        raise ConfigError("agent.expected_feeds must be a list of feed names")
    return AgentConfig(
        site_code=code,
        site_name=_get(site, "name", str, code, "site"),
        timezone=tz,
        data_dir=Path(data_dir),
        units=tuple(units),
        database_url=env.get("SITE_AGENT_DATABASE_URL")
        or _get(agent, "database_url", str, "", "agent"),
        stale_after=timedelta(minutes=_get(agent, "stale_after_minutes", float, 10.0, "agent")),
        snapshot_interval=timedelta(
            seconds=_get(agent, "snapshot_interval_seconds", float, 60.0, "agent")
        ),
        snapshot_min_interval=timedelta(
            seconds=_get(agent, "snapshot_min_interval_seconds", float, 1.0, "agent")
        ),
        heartbeat_interval=timedelta(
            seconds=_get(agent, "heartbeat_interval_seconds", float, 30.0, "agent")
        ),
        expected_feeds=tuple(feeds),
        location_source=location_source,
        bed_status_source=bed_status_source,
        event_loop=event_loop,
        forecast=ForecastConfig(
            scenario=_get(fc, "scenario", str, "", "forecast"),
            interval_minutes=_get(fc, "interval_minutes", float, 15.0, "forecast"),
            horizon_hours=_get(fc, "horizon_hours", int, 6, "forecast"),
            replications=_get(fc, "replications", int, 30, "forecast"),
        ),
        # DEID_KEYSTORE: the key store shared with the site's DE-ID worker (one file).
        keystore_path=Path(ks)
        if (ks := env.get("DEID_KEYSTORE") or _get(agent, "keystore_path", str, "", "agent"))
        else None,
        mllp=mllp,
        fhir=fhir,
        kafka=kafka,
        hub=_hub(data.get("hub", {}), env, base_dir),
    )


def _read_file(path: str | None) -> str:
    if not path:
        return ""
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc


def load_config(path: Path | str, *, env: Mapping[str, str] | None = None) -> AgentConfig:
    p = Path(path)
    try:
        with p.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError as exc:
        raise ConfigError(f"config file not found: {p}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: {exc}") from exc
    return parse_config(data, base_env=env, base_dir=p.parent)
