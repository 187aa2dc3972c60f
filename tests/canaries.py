"""Canary secrets (issue #15): values that must never be printed, logged, written to a file bioinfra
makes, or put on a command line. A test gives bioinfra canaries as credentials, then looks for them
everywhere it can: every file under the folders it names, and every process's command line while
bioinfra runs (sampled from /proc, as `ps` would show them to another user)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.process_killer import every_process

# Shaped like the real thing, so code that recognises a key or token by its form sees one.
AWS_ACCESS_KEY = "AKIACANARY7Q2XJ4R5T6"
AWS_SECRET_KEY = "canary/aws-secret-key+never-shown-7Q2XJ4R5T6"
AWS_SESSION = "canary-aws-session-token-never-shown"
GCP_TOKEN = "ya29.canary-gcp-access-token-never-shown"
MINIO_PASSWORD = "canary-minio-password-never-shown"
ALL = (AWS_ACCESS_KEY, AWS_SECRET_KEY, AWS_SESSION, GCP_TOKEN, MINIO_PASSWORD)


def credential_env() -> dict[str, str]:
    """The canaries as a user's environment carries credentials."""
    return {
        "AWS_ACCESS_KEY_ID": AWS_ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": AWS_SECRET_KEY, "AWS_SESSION_TOKEN": AWS_SESSION,
        "GOOGLE_OAUTH_ACCESS_TOKEN": GCP_TOKEN, "CLOUDSDK_AUTH_ACCESS_TOKEN": GCP_TOKEN,
        "MINIO_ROOT_PASSWORD": MINIO_PASSWORD,
    }


# Larger files are programs (Terraform's provider in its plugin cache), never anything bioinfra writes.
MAX_BYTES = 64 << 20


def files_with(roots: Iterable[Path], canaries: Iterable[str], *, allowed: Iterable[Path] = ()) -> list[str]:
    """`path: canary` for every file under `roots` (links not followed) holding a canary, but `allowed`."""
    allowed = {p.resolve() for p in allowed}
    needles = [(c, c.encode()) for c in canaries]
    found = []
    for root in roots:
        if not root.exists():
            continue
        for path in [root] if root.is_file() else root.rglob("*"):
            if path.is_symlink() or not path.is_file() or path.resolve() in allowed:
                continue
            if path.stat().st_size > MAX_BYTES:
                continue
            data = path.read_bytes()
            found += [f"{path}: {text}" for text, needle in needles if needle in data]
    return found


@contextmanager
def command_lines_watched(canaries: Iterable[str], poll_seconds: float = 0.01) -> Iterator[list[str]]:
    """Yields a list that fills with every process command line holding a canary while the block runs."""
    needles, seen = list(canaries), []
    looked_at: set[int] = set()

    def look(pid: int, argv: list[str]) -> None:
        line = " ".join(argv)
        looked_at.add(pid)
        if any(n in line for n in needles) and line not in seen:
            seen.append(line)

    with every_process(look, poll_seconds):
        yield seen
    assert len(looked_at) > 1, "the watcher saw no processes: /proc is not readable here"
