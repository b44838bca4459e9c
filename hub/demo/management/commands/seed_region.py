"""``manage.py seed_region``: a region of real-sized hospitals from the HHS capacity data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from hub.registry.hhs import read_capacity_file
from hub.registry.seeding import DEFAULT_COUNTIES, agents_write, region_seed

DEFAULT_DATA = (
    Path(settings.BASE_DIR).parent / "shared" / "data" / "hhs_ny_hospital_capacity_weekly.csv"
)


class Command(BaseCommand):
    help = (
        "Seed (or update) a region of N hospitals with real bed counts from the HHS weekly "
        "capacity file: units, travel times, and optionally site agent configs and keys."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="HHS CSV file")
        parser.add_argument("--hospitals", type=int, default=6)
        parser.add_argument("--region", default="hudson-valley", help="region code")
        parser.add_argument("--region-name", default="Hudson Valley (demo)")
        parser.add_argument(
            "--counties",
            default=",".join(DEFAULT_COUNTIES),
            help="comma-separated county names; empty for the whole state",
        )
        parser.add_argument(
            "--agent-dir",
            type=Path,
            default=None,
            help="write <site>.toml, <site>.signing_key and <site>.credential here and enrol "
            "each hospital's DE-ID worker with its public key",
        )
        parser.add_argument("--hub-url", default="http://127.0.0.1:8000")
        parser.add_argument("--data-root", default=".local/site_agent")

    def handle(self, *args: Any, **opts: Any) -> None:
        path: Path = opts["data"]
        if not path.exists():
            raise CommandError(f"HHS data not found: {path} (use --data)")
        if opts["hospitals"] < 1:
            raise CommandError("--hospitals must be at least 1")
        counties = tuple(c.strip() for c in opts["counties"].split(",") if c.strip())
        capacities = read_capacity_file(path)
        result = region_seed(
            capacities=capacities,
            region_code=opts["region"],
            region_name=opts["region_name"],
            counties=counties,
            hospitals=opts["hospitals"],
        )
        if len(result.hospitals) < opts["hospitals"]:
            self.stderr.write(
                f"only {len(result.hospitals)} hospitals with complete bed counts in "
                f"{', '.join(counties) or 'the state'}; widen --counties for more"
            )
        for hospital in result.hospitals:
            beds = sum(u.staffed_beds for u in hospital.units.exclude(unit_type="emergency"))
            self.stdout.write(f"  {hospital.site_code:10} {beds:5} beds  {hospital.name}")
        self.stdout.write(
            f"region {result.region.code}: {len(result.hospitals)} hospitals seeded, "
            f"{len(result.skipped)} skipped (suppressed or missing counts)"
        )
        if opts["agent_dir"] is not None:
            files = agents_write(
                hospitals=result.hospitals,
                directory=opts["agent_dir"],
                hub_url=opts["hub_url"],
                data_root=opts["data_root"],
            )
            self.stdout.write(f"site agent files in {opts['agent_dir']}: {len(files)} written")
