"""The EDXL-HAVE 2.0 structure our export may use, written down from the specification sources
(see docs/hub.md, "Exports"), and a checker for it. No network, no official XSD at test time.

Each complex element lists its children as the schema's sequence: particles in order, each a
set of alternative element names (a choice) with min/max occurrences. Every particle of the
draft sequence is listed, also those we never emit, so that order is checked against the
real positions. Leaves have a value check. An element that is in neither table is outside
the checked subset and is reported: the export may only use what is written down here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from xml.etree import ElementTree as ET

NS = {
    "have": "urn:oasis:names:tc:emergency:edxl:have:2.0",
    "edxl-ct": "urn:oasis:names:tc:emergency:edxl:ct:1.0",
    "xnl": "urn:oasis:names:tc:emergency:edxl:ciq:1.0:xnl",
}
UNBOUNDED = None


@dataclass(frozen=True)
class Particle:
    names: tuple[str, ...]
    min_occurs: int = 1
    max_occurs: int | None = 1


def p(*names: str, min_occurs: int = 1, max_occurs: int | None = 1) -> Particle:
    return Particle(names, min_occurs, max_occurs)


ROOT = "have:HAVE"

# Sequences of the HAVE 2.0 working-draft schema (post-WD08), for the elements we emit.
SEQUENCES: dict[str, list[Particle]] = {
    "have:HAVE": [
        p("have:organizationInformation"),
        p("have:reportingPeriod", min_occurs=0),
        p("have:reportComment", min_occurs=0),
        p("have:facility", max_occurs=UNBOUNDED),
        p("have:OVERALL_ISSUES", min_occurs=0),
    ],
    "have:organizationInformation": [p("xnl:OrganisationName", min_occurs=0, max_occurs=UNBOUNDED)],
    "have:facilityDetails": [p("xnl:OrganisationName", min_occurs=0, max_occurs=UNBOUNDED)],
    "xnl:OrganisationName": [p("xnl:NameElement", max_occurs=UNBOUNDED)],
    "have:facility": [
        p("have:facilityInformation"),
        p("have:reportingPeriod", min_occurs=0),
        p("have:activityInPeriod", min_occurs=0),
        p("have:serviceList", max_occurs=UNBOUNDED),
        p("have:capacity", min_occurs=0),
        p("have:resources", min_occurs=0),
        p("have:commentText", min_occurs=0, max_occurs=UNBOUNDED),
        p("have:facilityColourStatus", min_occurs=0),
        p("have:securityStatus", min_occurs=0),
        p("have:operations", min_occurs=0),
        p("have:capabilities", min_occurs=0),
    ],
    "have:facilityInformation": [
        p("have:facilityID"),
        p("have:parentFacility", min_occurs=0),
        p("have:facilityName"),
        p("have:facilityGeoLocation", min_occurs=0),
        p("have:facilityDetails"),
        p("have:facilityKind", min_occurs=0),
        p("have:facilityProfile", min_occurs=0),
        p("have:clinicalStatusDefault", "have:clinicalStatus", min_occurs=0),
        p("have:emergencyDepartmentStatus", min_occurs=0),
        p("have:emergencyOperations", min_occurs=0),
        p("have:helipad", min_occurs=0),
    ],
    "have:emergencyDepartmentStatus": [
        p("have:emsTraffic", min_occurs=0),
        p("have:emsCapacity", min_occurs=0),
        p("have:emsCensus", min_occurs=0),
        p("have:emsAmbulanceStatus", min_occurs=0),
        p("have:emsAirTransportStatus", min_occurs=0),
    ],
    "have:emsTraffic": [
        p("have:emsTrafficStatus", min_occurs=0),
        p("have:emsTrafficStatusListExtension", min_occurs=0, max_occurs=UNBOUNDED),
        p("have:emsTrafficReason", min_occurs=0),
        p("have:commentText", min_occurs=0),
    ],
    "have:emsAmbulanceStatus": [p("have:emsOffloadStatus"), p("have:emsOffloadMinutes")],
    # edxl-ct:TimePeriodType (EDXL-CT 1.0).
    "have:reportingPeriod": [
        p("edxl-ct:fromDateTime", min_occurs=0),
        p("edxl-ct:toDateTime", min_occurs=0),
    ],
    "have:serviceList": [
        p("have:taxonomyURI"),
        p("have:taxonomyName"),
        p("have:serviceTaxonomyComment", min_occurs=0),
        p("have:serviceListComment", min_occurs=0),
        p("have:serviceListItem", max_occurs=UNBOUNDED),
    ],
    "have:serviceListItem": [
        p("have:serviceTaxonomyKeyValue"),
        p("have:serviceName"),
        p("have:serviceStatus", min_occurs=0),
        p("have:serviceBedCapacity", min_occurs=0),
        p("have:capacity", min_occurs=0),
        p("have:staffingLevels", min_occurs=0),
        p("have:comment", min_occurs=0),
        p("have:futureServiceStates", min_occurs=0, max_occurs=UNBOUNDED),
    ],
    "have:serviceStatus": [
        p("have:isAvailable"),
        p("have:colourStatus", min_occurs=0),
        p("have:comment", min_occurs=0),
        p("have:stability", min_occurs=0),
        p("have:statusLevel", min_occurs=0),
    ],
    "have:serviceBedCapacity": [
        p("have:availableCount"),
        p("have:baselineCount", min_occurs=0),
        p("have:capacityNote", min_occurs=0),
        p("have:availability", min_occurs=0),
    ],
    "have:facilityColourStatus": [
        p("have:colourCode", "have:colourCodeDefault"),
        p("have:colourDescription", min_occurs=0),
    ],
    # edxl-ct:ValueKeyType (EDXL-CT 1.0), restricted by HAVE to its default colour list.
    "have:colourCodeDefault": [p("edxl-ct:valueListURI"), p("edxl-ct:value")],
}

# An EDXL date-time: seconds, and an explicit offset.
_EDXL_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d$")
_NCNAME = re.compile(r"^[A-Za-z_][A-Za-z0-9._-]*$")


def _one_of(*values: str) -> Callable[[str], bool]:
    allowed = frozenset(values)
    return lambda text: text in allowed


def _text(text: str) -> bool:
    return bool(text.strip())


def _integer(text: str) -> bool:
    return re.fullmatch(r"-?\d+", text) is not None


def _count(text: str) -> bool:
    return text.isdigit()


LEAVES: dict[str, Callable[[str], bool]] = {
    "have:reportComment": _text,
    "xnl:NameElement": _text,
    "have:facilityID": lambda text: _NCNAME.match(text) is not None,
    "have:facilityName": _text,
    "have:facilityKind": _one_of("Hospital", "LongTermCare", "TemporaryFacility"),
    "have:emsTrafficStatus": _one_of("Normal", "Advisory", "Closed", "NotApplicable"),
    "have:emsTrafficReason": _text,
    "have:emsOffloadStatus": _one_of("Normal", "Delayed"),
    "have:emsOffloadMinutes": _integer,
    "edxl-ct:fromDateTime": lambda text: _EDXL_TIME.match(text) is not None,
    "edxl-ct:toDateTime": lambda text: _EDXL_TIME.match(text) is not None,
    "have:taxonomyURI": _text,
    "have:taxonomyName": _text,
    "have:serviceTaxonomyKeyValue": _text,
    "have:serviceName": _text,
    "have:isAvailable": _one_of("true", "false", "1", "0"),
    "have:comment": _text,
    "have:availableCount": _integer,  # negative: beyond normal capacity
    "have:baselineCount": _count,
    "have:availability": _one_of("Open", "Full", "Exceeded", "Inactive"),
    "edxl-ct:valueListURI": _one_of(
        "urn:oasis:names:tc:emergency:EDXL:HAVE:2.0:Defaults:ColourCode"
    ),
    "edxl-ct:value": _one_of("red", "yellow", "green"),
    "have:colourDescription": _text,
}


def qname(tag: str) -> str:
    """``{uri}local`` as ``prefix:local`` with the prefixes of ``NS`` (else unchanged)."""
    for prefix, uri in NS.items():
        if tag.startswith(f"{{{uri}}}"):
            return f"{prefix}:{tag[len(uri) + 2 :]}"
    return tag


def _check_sequence(element: ET.Element, name: str, where: str, problems: list[str]) -> None:
    children = [qname(c.tag) for c in element]
    i = 0
    for particle in SEQUENCES[name]:
        n = 0
        while i < len(children) and children[i] in particle.names:
            n += 1
            i += 1
        if n < particle.min_occurs:
            problems.append(
                f"{where}: needs {'|'.join(particle.names)} (at least {particle.min_occurs})"
            )
        if particle.max_occurs is not None and n > particle.max_occurs:
            problems.append(
                f"{where}: {'|'.join(particle.names)} at most {particle.max_occurs} times"
            )
    if i < len(children):
        problems.append(f"{where}: {children[i]} not allowed here (children {children})")


def problems_in(element: ET.Element, where: str = "") -> list[str]:
    """Everything in ``element`` (a HAVE document's root, or below) that breaks the structure."""
    name = qname(element.tag)
    where = f"{where}/{name}"
    problems: list[str] = []
    if name in SEQUENCES:
        if (element.text or "").strip():
            problems.append(f"{where}: text in an element-only element")
        _check_sequence(element, name, where, problems)
        for child in element:
            problems.extend(problems_in(child, where))
    elif name in LEAVES:
        if len(element):
            problems.append(f"{where}: a value element with children")
        if not LEAVES[name](element.text or ""):
            problems.append(f"{where}: value {element.text!r} not allowed")
    else:
        problems.append(f"{where}: outside the checked HAVE 2.0 subset")
    return problems


def check_have_document(root: ET.Element) -> None:
    """Assert that ``root`` is a HAVE 2.0 document made of the checked subset only."""
    assert qname(root.tag) == ROOT, f"root is {root.tag}"
    problems = problems_in(root)
    assert not problems, "\n".join(problems)
