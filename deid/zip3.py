"""Restricted three-digit ZIP codes: the one place this list lives.

45 CFR 164.514(b)(2)(i)(B) lets a Safe Harbor release keep the first three digits of a ZIP
code only if the geographic unit formed by all ZIP codes with those three digits contains more
than 20,000 people (current Census data); otherwise the three digits become 000.

Source: HHS Office for Civil Rights, "Guidance Regarding Methods for De-identification of
Protected Health Information in Accordance with the HIPAA Privacy Rule" (2012), section 3.3,
which lists the 17 three-digit ZIP codes with 20,000 or fewer people in the 2000 Census:
036, 059, 063, 102, 203, 556, 692, 790, 821, 823, 830, 831, 878, 879, 884, 890, 893.
When HHS publishes a list based on newer Census data, replace the set below (and the source).
"""

from __future__ import annotations

RESTRICTED_ZIP3: frozenset[str] = frozenset(
    {
        "036",
        "059",
        "063",
        "102",
        "203",
        "556",
        "692",
        "790",
        "821",
        "823",
        "830",
        "831",
        "878",
        "879",
        "884",
        "890",
        "893",
    }
)
SUPPRESSED_ZIP3 = "000"


def zip3(zip_code: str | None) -> str | None:
    """First three digits of a US ZIP (5 or 9 digits, '-' allowed); '000' for the restricted
    areas; None for anything that is not a ZIP code."""
    if not zip_code:
        return None
    digits = zip_code.strip().replace("-", "").replace(" ", "")
    if len(digits) not in (5, 9) or not digits.isdigit():
        return None
    prefix = digits[:3]
    return SUPPRESSED_ZIP3 if prefix in RESTRICTED_ZIP3 else prefix
