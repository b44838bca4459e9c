"""`python -m deid ...`: the stream worker, the offline transform and verify commands, key
generation, policy signing and schema generation."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from deid.logformat import configure_logging
from deid.signing import (
    generate_signing_key,
    key_id_for,
    load_private_key,
    private_key_b64,
    public_key_b64,
    secret_from_env,
)

GOVERNANCE_PUBLIC_KEYS_ENV = "DEID_GOVERNANCE_PUBLIC_KEYS"
GOVERNANCE_SIGNING_KEY_ENV = "DEID_GOVERNANCE_SIGNING_KEY"


def _write_secret(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text + "\n")


def cmd_keygen(args: argparse.Namespace) -> int:
    """Write a key pair (NAME.key, mode 600, and NAME.pub) and print the public key and its id
    for the hub's site registry; or, with --master, a 32-byte AES master key."""
    # Without --out the keys are printed (e.g. `docker run IMAGE python -m deid keygen`).
    to_stdout = args.out is None
    folder = Path(args.out or ".")
    if args.master:
        from deid.keystore import MasterKeyRing

        key = MasterKeyRing.generate_b64()
        if to_stdout:
            print(key)
            return 0
        path = folder / "deid_master.key"
        _write_secret(path, key)
        print(f"master key written to {path} (set DEID_MASTER_KEY_FILE={path})")
        return 0
    private = generate_signing_key()
    if to_stdout:
        print(f"private_key: {private_key_b64(private)}")
    else:
        _write_secret(folder / f"{args.name}.key", private_key_b64(private))
        (folder / f"{args.name}.pub").write_text(public_key_b64(private) + "\n", encoding="utf-8")
        print(f"private key: {folder / f'{args.name}.key'} (mode 600; point *_FILE at it)")
    print(f"public_key: {public_key_b64(private)}")
    print(f"key_id: {key_id_for(private)}")
    return 0


def cmd_schemas(args: argparse.Namespace) -> int:
    from deid.schemas import drift, write_schemas

    if args.check:
        stale = drift(args.folder)
        for name in stale:
            print(f"out of date: {Path(args.folder) / name}", file=sys.stderr)
        return 1 if stale else 0
    for path in write_schemas(args.folder):
        print(path)
    return 0


def governance_keys(arg: str | None) -> list[str]:
    """Trusted governance public keys: --governance-key, else DEID_GOVERNANCE_PUBLIC_KEYS
    (comma-separated base64, or a file via DEID_GOVERNANCE_PUBLIC_KEYS_FILE)."""
    text = arg or secret_from_env(GOVERNANCE_PUBLIC_KEYS_ENV)
    if not text:
        return []
    if Path(text).is_file():
        text = Path(text).read_text(encoding="utf-8")
    return [k.strip() for k in text.replace("\n", ",").split(",") if k.strip()]


def cmd_sign_policy(args: argparse.Namespace) -> int:
    from deid.policy import sign_policy

    key_text = (
        Path(args.key).read_text(encoding="utf-8")
        if args.key
        else secret_from_env(GOVERNANCE_SIGNING_KEY_ENV)
    )
    if not key_text:
        print(f"no signing key: --key FILE or {GOVERNANCE_SIGNING_KEY_ENV}(_FILE)", file=sys.stderr)
        return 2
    doc = json.loads(Path(args.policy).read_text(encoding="utf-8"))
    signed = sign_policy(doc.get("policy", doc), load_private_key(key_text))
    text = json.dumps(signed, indent=2, ensure_ascii=False) + "\n"
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


def cmd_transform(args: argparse.Namespace) -> int:
    from deid.offline import run_transform

    result: int = run_transform(args)
    return result


def cmd_verify(args: argparse.Namespace) -> int:
    from deid.offline import run_verify

    result: int = run_verify(args)
    return result


def cmd_run(args: argparse.Namespace) -> int:
    from deid.worker import run_from_args

    return run_from_args(args)


def cmd_synth(args: argparse.Namespace) -> int:
    """Synthetic raw records for demos and previews (never real patients)."""
    from deid.keystore import PatientKeyStore
    from deid.testing.synthetic import SyntheticSite

    store = PatientKeyStore.from_env(args.keystore) if args.keystore else None
    site = SyntheticSite(args.site, seed=args.seed, keystore=store)
    patients = site.patients(max(1, args.records // 5))
    flows: Sequence[Any] = (
        site.flow_events(patients, args.records)
        if store is not None
        else site.plain_flow_events(patients, args.records)
    )
    with open(args.out, "w", encoding="utf-8") as fh:
        for record in [*site.census(), *flows, site.heartbeat()]:
            fh.write(record.encode().decode() + "\n")
    kind = "encrypted (raw.flow_event)" if store else "plaintext (raw.flow_event.plain)"
    print(f"wrote {args.out}: {args.records} {kind} flow events, census, heartbeat")
    return 0


def cmd_rotate_master_key(args: argparse.Namespace) -> int:
    """Re-wrap every key of the site key store under the newest master key version in
    DEID_MASTER_KEY (`2:NEW,1:OLD`); afterwards the old version can be removed."""
    from deid.keystore import KeyStoreError, PatientKeyStore

    path = args.keystore or os.environ.get("DEID_KEYSTORE")
    if not path:
        print("no key store: --keystore PATH or DEID_KEYSTORE", file=sys.stderr)
        return 2
    try:
        with PatientKeyStore.from_env(path) as store:
            count = store.rotate_master_key()
            stats = store.stats()
    except KeyStoreError as exc:
        print(f"rotation failed: {exc}", file=sys.stderr)
        return 1
    print(f"re-wrapped {count} rows under the current master key version; {stats}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m deid", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="the stream worker: site raw topic -> regional topic")
    p.add_argument("--site", required=True, help="site code")
    p.add_argument("--bootstrap", default=None, help="Kafka (default: $KAFKA_BOOTSTRAP_SERVERS)")
    p.add_argument("--policy", default=None, help="local demo: a signed policy file")
    p.add_argument("--governance-key", default=None, help="trusted governance public key(s)")
    p.add_argument("--keystore", default=None, help="site key store (default $DEID_KEYSTORE)")
    p.add_argument("--input-topic", default=None, help="default: site.<code>.raw.v1")
    p.add_argument("--output-topic", default=None, help="default: regional.deid.v1")
    p.add_argument("--control-topic", default=None, help="default: regional.control.v1")
    p.add_argument(
        "--regional-deadletter-topic", default=None, help="default: regional.deadletter.v1"
    )
    p.add_argument("--group", default=None, help="consumer group (default deid.<site>)")
    p.add_argument("--transactional-id", default=None, help="default deid.<site>")
    p.add_argument("--envelope-size", type=int, default=500, help="records per envelope")
    p.add_argument("--batch", type=int, default=None, help="max records per window")
    p.add_argument("--window-seconds", type=float, default=None, help="max window length")
    p.add_argument("--metrics-port", type=int, default=None, help="Prometheus port (optional)")
    p.add_argument("--stats-interval", type=float, default=10.0, help="seconds between log lines")
    p.add_argument(
        "--exit-when-idle", type=float, default=None, help="tests/bench: exit after N s idle"
    )
    p.add_argument("--passthrough", action="store_true", help="benchmark: identity transform")
    p.add_argument("--throttle", type=float, default=0.0, help="max records/s (0: unlimited)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("transform", help="apply a policy offline to a JSONL file of raw records")
    p.add_argument("--policy", required=True)
    p.add_argument("--in", dest="input", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--keystore", default=None, help="to decrypt raw.flow_event PHI")
    p.add_argument("--governance-key", default=None)
    p.add_argument("--allow-unsigned", action="store_true", help="preview an unsigned policy")
    p.set_defaults(func=cmd_transform)

    p = sub.add_parser(
        "verify", help="check a release (JSONL of regional records) against a policy"
    )
    p.add_argument("--policy", required=True)
    p.add_argument("release")
    p.add_argument("--governance-key", default=None)
    p.add_argument("--site-key", default=None, help="also verify envelope signatures")
    p.add_argument("--allow-unsigned", action="store_true")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("keygen", help="write an Ed25519 key pair (or a master key)")
    p.add_argument(
        "--out", default=None, help="folder for NAME.key (0600) and NAME.pub; default: print"
    )
    p.add_argument("--name", default="site_signing", help="file name stem")
    p.add_argument("--master", action="store_true", help="a 32-byte AES master key instead")
    p.set_defaults(func=cmd_keygen)

    p = sub.add_parser("sign-policy", help="governance: sign a policy document")
    p.add_argument("policy")
    p.add_argument("--key", default=None, help="governance private key file")
    p.add_argument("--out", default=None)
    p.set_defaults(func=cmd_sign_policy)

    p = sub.add_parser("synth", help="write synthetic raw records (JSON Lines) for demos")
    p.add_argument("--out", required=True)
    p.add_argument("--site", default="DEMO")
    p.add_argument("--records", type=int, default=1000, help="flow events")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--keystore", default=None, help="encrypt PHI with this key store")
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser("rotate-master-key", help="re-wrap the key store under the newest key")
    p.add_argument("--keystore", default=None, help="default: $DEID_KEYSTORE")
    p.set_defaults(func=cmd_rotate_master_key)

    p = sub.add_parser("schemas", help="write the JSON Schemas of the contracts")
    p.add_argument("folder", nargs="?", default="docs/schemas")
    p.add_argument("--check", action="store_true", help="exit 1 if the files differ")
    p.set_defaults(func=cmd_schemas)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    configure_logging(os.environ.get("DEID_LOG_LEVEL", "INFO"))  # LOG_FORMAT=json: JSON lines
    args = build_parser().parse_args(argv)
    result: int = args.func(args)
    return result
