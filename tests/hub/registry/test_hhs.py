"""The HHS capacity file: suppressed and missing values are never bed counts."""

from hub.registry.hhs import HospitalCapacity, parse_cell, pick_spread, read_capacity

HEADER = (
    "date",
    "county",
    "fips",
    "hospital_pk",
    "total_adult_inpatient_avg",
    "total_staffed_adult_icu_avg",
)


def rows(*values: tuple[str, ...]) -> list[dict[str, str]]:
    return [dict(zip(HEADER, v, strict=True)) for v in values]


def test_suppressed_and_empty_cells_are_not_numbers() -> None:
    assert parse_cell("-999999") == (None, True)
    assert parse_cell("-999999.0") == (None, True)
    assert parse_cell("") is None
    assert parse_cell(None) is None
    assert parse_cell("12.6") == (12.6, False)


def test_each_figure_comes_from_the_latest_week_it_was_reported() -> None:
    capacity = read_capacity(
        rows(
            ("2023-01-06", "Kings", "36047", "330001", "300.0", "20.0"),
            ("2023-01-13", "Kings", "36047", "330001", "310.4", ""),  # ICU not reported
        )
    )["330001"]
    assert capacity.adult_inpatient_beds == 310
    assert capacity.adult_icu_beds == 20
    assert capacity.figures["total_staffed_adult_icu_avg"].week == "2023-01-06"
    assert capacity.complete


def test_a_suppressed_latest_value_makes_the_hospital_incomplete() -> None:
    capacity = read_capacity(
        rows(
            ("2023-01-06", "Kings", "36047", "330002", "90.0", "8.0"),
            ("2023-01-13", "Kings", "36047", "330002", "91.0", "-999999"),
        )
    )["330002"]
    assert capacity.adult_icu_beds is None
    assert capacity.figures["total_staffed_adult_icu_avg"].suppressed
    assert not capacity.complete


def test_hospitals_reporting_only_icu_are_incomplete() -> None:
    capacity = read_capacity(rows(("2023-01-06", "Erie", "36029", "330003", "", "10.0")))
    assert not capacity["330003"].complete


def test_pick_spread_takes_the_largest_the_smallest_and_between() -> None:
    caps = [HospitalCapacity(str(n), "X", "", {}) for n in range(10)]
    sizes = {str(n): 100 + 50 * n for n in range(10)}
    ranked = pick_spread(
        [
            read_capacity(
                rows(("2023-01-06", "X", "", c.hospital_pk, str(sizes[c.hospital_pk]), "10"))
            )[c.hospital_pk]
            for c in caps
        ],
        3,
    )
    assert [c.adult_inpatient_beds for c in ranked] == [550, 350, 100]
