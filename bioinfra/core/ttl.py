"""A cluster's time-to-live (issue #8): `up --ttl 8h` records when `bioinfra destroy` is due.

Nothing is destroyed automatically: a forgotten cluster is the usual way a research cloud bill
grows, but deleting one under a running analysis is worse. So the TTL is a reminder the tools act
on: `bioinfra status` warns once a cluster is past it (and notes the time left before that).

The record lives in the environment's local state, beside the rendered stacks and the Terraform
state: `.bioinfra/<name>/<target>/ttl.json`, mode 0600, written atomically. It is this machine's
record (as is a local Terraform state): a colleague's `status` does not see it. `destroy` removes it
once the cluster is gone; `up` without --ttl leaves it as it is, `up --ttl off` removes it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from bioinfra.errors import InputError

TTL_FILE = "ttl.json"
OFF = ("off", "none", "0")
MAX_TTL = dt.timedelta(days=90)
_UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_PART = re.compile(r"(\d+)([mhdw])")


def parse_duration(text: str) -> dt.timedelta:
    """'30m', '8h', '2d', '1w', or a sum such as '1d12h'. At least a minute, at most 90 days."""
    value = text.strip().lower()
    if not value or _PART.sub("", value) != "":
        raise InputError(f"--ttl {text!r}: not a duration",
                         hint="a number and a unit, m (minutes), h (hours), d (days) or w (weeks): 30m, 8h, 2d, 1d12h; "
                              "`--ttl off` removes a recorded time-to-live")
    seconds = sum(int(n) * _UNITS[unit] for n, unit in _PART.findall(value))
    if seconds < 60:
        raise InputError(f"--ttl {text!r}: must be at least 1m", hint="e.g. 30m, 8h or 2d")
    if seconds > MAX_TTL.total_seconds():
        raise InputError(f"--ttl {text!r}: more than {MAX_TTL.days} days is not a time-to-live",
                         hint="leave --ttl out for a cluster meant to stay up")
    return dt.timedelta(seconds=seconds)


def format_duration(delta: dt.timedelta) -> str:
    """A span in words a person reads at a glance: '3d 4h', '3h 12m', '12m', '<1m'."""
    minutes = int(abs(delta.total_seconds()) // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h {mins}m" if mins else f"{hours}h"
    return f"{mins}m" if mins else "<1m"


@dataclass(frozen=True)
class TtlRecord:
    cluster: str
    target: str
    ttl: str  # as given to `up --ttl`, e.g. "8h"
    set_at: dt.datetime  # UTC: when that `up` started
    expires_at: dt.datetime  # UTC

    def to_dict(self) -> dict[str, Any]:
        return {"cluster": self.cluster, "target": self.target, "ttl": self.ttl,
                "set_at": self.set_at.isoformat(timespec="seconds"),
                "expires_at": self.expires_at.isoformat(timespec="seconds")}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TtlRecord:
        return cls(str(data["cluster"]), str(data["target"]), str(data["ttl"]),
                   _utc(dt.datetime.fromisoformat(data["set_at"])), _utc(dt.datetime.fromisoformat(data["expires_at"])))


def _utc(when: dt.datetime) -> dt.datetime:
    return when.replace(tzinfo=dt.timezone.utc) if when.tzinfo is None else when.astimezone(dt.timezone.utc)


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def new_record(cluster: str, target: str, ttl: str, set_at: Optional[dt.datetime] = None) -> TtlRecord:
    start = _utc(set_at or now_utc()).replace(microsecond=0)
    return TtlRecord(cluster, target, ttl.strip().lower(), start, start + parse_duration(ttl))


def ttl_path(env_root: Path) -> Path:
    return env_root / TTL_FILE


def write_ttl(env_root: Path, record: TtlRecord) -> Path:
    """Atomically, mode 0600 from the first byte (the folder holds local state: 0700 where `up` made it)."""
    path = ttl_path(env_root)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(json.dumps(record.to_dict(), indent=2) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)  # in case the file existed with other bits (O_CREAT keeps them)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def read_ttl(env_root: Path) -> Optional[TtlRecord]:
    """The recorded TTL, None if there is none. A damaged file is an InputError naming it."""
    path = ttl_path(env_root)
    try:
        return TtlRecord.from_dict(json.loads(path.read_text()))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{path}: not a time-to-live record bioinfra can read ({type(exc).__name__})",
                         hint="delete it, or record a new one with `bioinfra up TARGET --ttl 8h`") from None


def remove_ttl(env_root: Path) -> bool:
    """After a clean `destroy` (or `up --ttl off`). True if there was one."""
    try:
        ttl_path(env_root).unlink()
        return True
    except FileNotFoundError:
        return False


@dataclass(frozen=True)
class TtlCheck:
    record: TtlRecord
    now: dt.datetime

    @property
    def expired(self) -> bool:
        return self.now >= self.record.expires_at

    @property
    def remaining(self) -> dt.timedelta:
        """Time left (negative once past)."""
        return self.record.expires_at - self.now

    @property
    def message(self) -> str:
        r = self.record
        origin = f"set by `up --ttl {r.ttl}` at {r.set_at:%Y-%m-%d %H:%M} UTC"
        if self.expired:
            from bioinfra.targets import TARGETS

            cloud = getattr(TARGETS.get(r.target), "is_cloud", False)
            action = "stops the bill" if cloud else "removes what bioinfra added"
            return (f"cluster {r.cluster} is {format_duration(-self.remaining)} past its time-to-live ({origin}): "
                    f"`bioinfra destroy {r.target}` {action}")
        return (f"cluster {r.cluster}: {format_duration(self.remaining)} left of its time-to-live ({origin}; "
                f"due {r.expires_at:%Y-%m-%d %H:%M} UTC)")

    def to_dict(self) -> dict[str, Any]:
        seconds = int(self.remaining.total_seconds())
        return {**self.record.to_dict(), "expired": self.expired, "seconds_left": max(seconds, 0),
                "seconds_past": max(-seconds, 0), "message": self.message}


def check(env_root: Path, now: Optional[dt.datetime] = None) -> Optional[TtlCheck]:
    """The recorded TTL against the clock; None when `up` recorded none."""
    record = read_ttl(env_root)
    return None if record is None else TtlCheck(record, _utc(now or now_utc()))
