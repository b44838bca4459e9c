"""Tiny HL7 v2.5 ADT message builder for tests (synthetic values only)."""

from __future__ import annotations

import itertools

_ids = itertools.count(1)


def adt(
    trigger: str,
    mrn: str = "SYN0001",
    *,
    cls: str = "I",
    loc: str = "",
    prior: str = "",
    pending: str = "",
    control: str | None = None,
    app: str = "TEST_EHR",
    when: str = "20250301101500",
    admit: str = "",
    acuity: str = "",
    arrival: str = "",
    name: str = "Testperson^Alex",
    extra: str = "",
) -> str:
    """An ADT message; ``loc``/``prior``/``pending`` are HL7 PLs like ``4W^401^A``."""
    control = control or f"T{next(_ids)}"
    pv1 = ["PV1", "1", cls, loc, "", "", prior] + [""] * 39
    pv1[42] = pending
    pv1[44] = admit
    pv2 = ["PV2"] + [""] * 38
    pv2[25] = acuity
    pv2[38] = arrival
    segs = [
        f"MSH|^~\\&|{app}|GEN|SITE_AGENT|GEN|{when}||ADT^{trigger}^ADT_A01|{control}|P|2.5",
        f"EVN|{trigger}|{when}",
        f"PID|1||{mrn}^^^GEN^MR||{name}||19800101|F|||1 Test St^^Testville^NY^12345||"
        "(555) 0101^PRN^PH~^NET^Internet^alex@example.org|||||ACC1|900-11-2222",
        "|".join(pv1).rstrip("|"),
    ]
    if acuity or arrival:
        segs.append("|".join(pv2).rstrip("|"))
    if extra:
        segs.append(extra)
    return "\r".join(segs) + "\r"


def a20(loc: str, status: str, *, control: str | None = None, app: str = "BEDS") -> str:
    control = control or f"B{next(_ids)}"
    return (
        f"MSH|^~\\&|{app}|GEN|SITE_AGENT|GEN|20250301101500||ADT^A20^ADT_A20|{control}|P|2.5\r"
        f"EVN|A20|20250301101500\rNPU|{loc}|{status}\r"
    )


def a17(mrn_a: str, loc_a: str, mrn_b: str, loc_b: str) -> str:
    return (
        f"MSH|^~\\&|TEST_EHR|GEN|SITE_AGENT|GEN|20250301101500||ADT^A17^ADT_A17|S{next(_ids)}|P|2.5\r"
        f"EVN|A17|20250301101500\r"
        f"PID|1||{mrn_a}^^^GEN^MR||A^A\rPV1|1|I|{loc_a}\r"
        f"PID|2||{mrn_b}^^^GEN^MR||B^B\rPV1|2|I|{loc_b}\r"
    )


def a40(survivor: str, prior: str) -> str:
    return (
        f"MSH|^~\\&|TEST_EHR|GEN|SITE_AGENT|GEN|20250301101500||ADT^A40^ADT_A39|M{next(_ids)}|P|2.5\r"
        f"EVN|A40|20250301101500\rPID|1||{survivor}^^^GEN^MR||S^S\rMRG|{prior}^^^GEN^MR\r"
    )


def msa(ack: bytes) -> tuple[str, str]:
    """(MSA-1, MSA-2) of an ACK."""
    for seg in ack.decode().split("\r"):
        if seg.startswith("MSA"):
            f = seg.split("|")
            return f[1], f[2] if len(f) > 2 else ""
    raise AssertionError(f"no MSA in {ack!r}")


def err_code(ack: bytes) -> str:
    for seg in ack.decode().split("\r"):
        if seg.startswith("ERR"):
            return seg.split("|")[3].split("^")[0]
    return ""
