"""Which Kubernetes versions EKS still runs, and at which fee: bioinfra/data/eks_versions.yaml.

`up aws` / `plan aws` refuse a version past its extended support before anything is created (EKS
would refuse it after minutes of VPC work), and note one in extended support (six times the control
plane fee); `estimate` charges that fee.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Optional

VERSIONS_FILE = Path(__file__).resolve().parents[1] / "data" / "eks_versions.yaml"
STANDARD, EXTENDED, ENDED, UNKNOWN = "standard", "extended", "ended", "unknown"


@dataclass(frozen=True)
class VersionSupport:
    version: str
    phase: str  # standard | extended | ended | unknown (not in the table)
    until: Optional[dt.date]  # the last day of the phase it is in (ended: when extended support ended)
    recommended: str  # the newest version of the table in standard support that day
    as_of: dt.date  # the table's date

    def describe(self) -> str:
        """One line for a person: what the version's support is, and what to use instead."""
        if self.phase == STANDARD:
            return f"Kubernetes {self.version} (EKS standard support until {self.until})"
        if self.phase == EXTENDED:
            return (f"Kubernetes {self.version} is in EKS extended support until {self.until}: the control plane "
                    f"costs 0.60 USD/h instead of 0.10 (aws.kubernetes_version: \"{self.recommended}\" is in "
                    "standard support)")
        if self.phase == ENDED:
            ended = f"its extended support ended on {self.until}" if self.until else "it is older than any EKS supports"
            return f"EKS no longer runs Kubernetes {self.version}: {ended}, so EKS creates no cluster of it"
        return f"Kubernetes {self.version} (not in bioinfra's EKS calendar of {self.as_of}: not judged)"


@lru_cache(maxsize=1)
def _table(path: Path = VERSIONS_FILE) -> dict[str, Any]:
    import yaml

    return yaml.safe_load(path.read_text())


def _key(version: str) -> tuple[int, ...]:
    """(1, 35) for "1.35"; () for what is not a version number (never judged)."""
    try:
        return tuple(int(part) for part in version.split("."))
    except ValueError:
        return ()


def support(version: str, today: Optional[dt.date] = None) -> VersionSupport:
    """Where `version` ("1.35") stands on EKS on `today` (default: today)."""
    today = today or dt.date.today()
    table = _table()
    versions: dict[str, dict[str, dt.date]] = table["versions"]
    as_of = table["as_of"]
    in_standard = [v for v, d in versions.items() if d["released"] <= today <= d["standard_until"]]
    recommended = max(in_standard or versions, key=_key)
    dates = versions.get(version)
    if dates is None:
        # Older than the table's oldest entry: long gone from EKS. Newer: not judged.
        if _key(version) and _key(version) < min(_key(v) for v in versions):
            return VersionSupport(version, ENDED, None, recommended, as_of)
        return VersionSupport(version, UNKNOWN, None, recommended, as_of)
    if today <= dates["standard_until"]:
        return VersionSupport(version, STANDARD, dates["standard_until"], recommended, as_of)
    if today <= dates["extended_until"]:
        return VersionSupport(version, EXTENDED, dates["extended_until"], recommended, as_of)
    return VersionSupport(version, ENDED, dates["extended_until"], recommended, as_of)
