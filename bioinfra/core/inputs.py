"""Checking inputs before any step runs.

Every input is read once, end to end: that one pass computes its SHA-256 (for the manifest and the
content-addressed cache), counts FASTQ records, and proves a gzip file is complete. A problem is an
InputError naming the file and what to do, raised before anything is created.
"""

from __future__ import annotations

import hashlib
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from bioinfra.errors import InputError

CHUNK = 1 << 20
Progress = Optional[Callable[[int], None]]  # called with the bytes just read

_FASTA_SEQ_RE = re.compile(rb"^[A-Za-z*\-.]*$")


@dataclass(frozen=True)
class FastqFacts:
    path: Path
    sha256: str
    bytes: int
    reads: int
    gzipped: bool
    # The names of the first records (up to PAIR_CHECK_RECORDS), as bwa compares mates: the first
    # word of the '@' line without a trailing /1 or /2.
    first_names: tuple[bytes, ...] = ()


# How many leading records of R1 and R2 are compared by name before anything runs: enough to catch
# files from two samples, or one file sorted or filtered alone, which bwa would only refuse at align
# ("paired reads have different names"), after FastQC and indexing.
PAIR_CHECK_RECORDS = 1000


@dataclass(frozen=True)
class FastaFacts:
    path: Path
    sha256: str
    bytes: int
    sequences: int
    length: int
    gzipped: bool


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


def _must_be_readable_file(path: Path, role: str) -> None:
    if not path.exists():
        raise InputError(f"{role} {path} does not exist", hint="check the path (relative paths start from the current folder)")
    if not path.is_file():
        raise InputError(f"{role} {path} is not a file")
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise InputError(f"{role} {path} cannot be read: {exc.strerror}") from None
    if path.stat().st_size == 0:
        raise InputError(f"{role} {path} is empty (0 bytes)", hint="was the download or copy cut short?")


def _stream(path: Path, role: str, digest: Any, progress: Progress):
    """Yield the file's decompressed chunks, then b"" at the end; `digest` sees the raw bytes.

    Handles multi-member gzip (bgzip output is a series of members) by starting a new
    decompressor on `unused_data`; a member still open at end of file means the file is truncated.
    """
    gz = _is_gzip(path)
    decomp = zlib.decompressobj(wbits=31)
    member_open = False
    with open(path, "rb") as fh:
        while block := fh.read(CHUNK):
            digest.update(block)
            if progress:
                progress(len(block))
            if not gz:
                yield block
                continue
            data = block
            while data:
                try:
                    out = decomp.decompress(data)
                except zlib.error as exc:
                    raise InputError(f"{role} {path} is not a valid gzip file ({exc})", hint="re-copy or re-download it") from None
                member_open = True
                if out:
                    yield out
                if not decomp.eof:
                    break
                member_open = False
                data = decomp.unused_data
                decomp = zlib.decompressobj(wbits=31)
                if data and not data.startswith(b"\x1f\x8b"):
                    if data.strip(b"\0"):
                        raise InputError(f"{role} {path} has data after its gzip stream that is not gzip")
                    break  # zero padding some tools write after the last member
    if member_open:
        raise InputError(
            f"{role} {path} is a truncated gzip file (it ends before the compressed stream does)",
            hint="the copy or download was cut short: fetch the file again and compare its checksum",
        )
    yield b""


def inspect_fastq(path: Path, role: str = "FASTQ", progress: Progress = None) -> FastqFacts:
    """Check a FASTQ (plain or gzip) and return its checksum and read count."""
    path = Path(path)
    _must_be_readable_file(path, role)
    gz = _is_gzip(path)
    newlines = 0
    head = bytearray()
    last = b""
    total = 0
    digest = hashlib.sha256()
    # A gzip stream that is cut exactly at a member boundary decompresses cleanly, so the
    # line count being a multiple of four is the second guard against truncation.
    for chunk in _stream(path, role, digest, progress):
        if not chunk:
            continue
        total += len(chunk)
        newlines += chunk.count(b"\n")
        if len(head) < 65536:
            head += chunk[: 65536 - len(head)]
        last = chunk[-1:]
    if total == 0 or not head.strip():
        raise InputError(f"{role} {path} holds no reads", hint="an empty FASTQ usually means an upstream step failed")
    lines = newlines + (0 if last == b"\n" else 1)
    _check_fastq_head(bytes(head), path, role)
    if lines % 4:
        raise InputError(
            f"{role} {path} ends in the middle of a record ({lines} lines is not a multiple of 4)",
            hint="the file is truncated or not FASTQ: fetch it again",
        )
    return FastqFacts(path=path, sha256=digest.hexdigest(), bytes=path.stat().st_size, reads=lines // 4, gzipped=gz,
                      first_names=_first_names(bytes(head)))


_MATE_SUFFIX_RE = re.compile(rb"/[12]$")


def _first_names(head: bytes) -> tuple[bytes, ...]:
    """Read names of the complete records at the start of a FASTQ (the first 64 KiB of it)."""
    lines = head.split(b"\n")
    complete = (len(lines) - 1) // 4  # the last line may be cut at the head's end
    names = []
    for i in range(min(complete, PAIR_CHECK_RECORDS)):
        header = lines[4 * i].rstrip(b"\r")
        word = header[1:].split(maxsplit=1)[0] if header[1:].strip() else b""
        names.append(_MATE_SUFFIX_RE.sub(b"", word))
    return tuple(names)


def shown(value: bytes | str, limit: int = 60) -> str:
    """A piece of a user's file for an error message: quoted, control characters escaped, cut short."""
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    text = repr(text[:limit])
    return text + ("..." if len(value) > limit else "")


def _check_fastq_head(head: bytes, path: Path, role: str) -> None:
    lines = head.split(b"\n")[:4]
    if len(lines) < 4 or not lines[0].startswith(b"@") or not lines[2].startswith(b"+"):
        raise InputError(
            f"{role} {path} is not FASTQ: a record must be 4 lines, '@name', sequence, '+', qualities",
            hint="FASTA, BAM or a sample sheet given in place of reads? Give the .fastq or .fastq.gz file",
        )
    if len(lines[1].rstrip(b"\r")) != len(lines[3].rstrip(b"\r")):
        raise InputError(f"{role} {path} is not FASTQ: the first record's sequence and quality lengths differ")


def inspect_fasta(path: Path, role: str = "reference", progress: Progress = None) -> FastaFacts:
    path = Path(path)
    _must_be_readable_file(path, role)
    gz = _is_gzip(path)
    sequences = 0
    length = 0
    pending = b""
    digest = hashlib.sha256()
    line_no = 0
    for chunk in _stream(path, role, digest, progress):
        data = pending + chunk
        lines = data.split(b"\n")
        pending = lines.pop() if chunk else b""
        for line in lines + ([pending] if not chunk and pending else []):
            line_no += 1
            line = line.rstrip(b"\r")
            if not line:
                continue
            if line.startswith(b">"):
                sequences += 1
                continue
            if sequences == 0 or not _FASTA_SEQ_RE.match(line):
                raise InputError(
                    f"{role} {path} is not FASTA (line {line_no}: {line[:40]!r}...)",
                    hint="a reference is a FASTA file: '>name' lines followed by sequence lines",
                )
            length += len(line)
    if sequences == 0 or length == 0:
        raise InputError(f"{role} {path} is not FASTA: it has no '>name' line or no sequence")
    return FastaFacts(path=path, sha256=digest.hexdigest(), bytes=path.stat().st_size, sequences=sequences, length=length, gzipped=gz)


def check_distinct(r1: Path, r2: Path) -> None:
    """Before reading anything: R1 and R2 must be two files."""
    if r1.exists() and r2.exists() and r1.resolve() == r2.resolve():
        raise InputError(f"--r1 and --r2 are the same file ({r1})", hint="give the read 1 and read 2 files of the pair")


def check_pair(r1: FastqFacts, r2: FastqFacts) -> None:
    if r1.reads != r2.reads:
        raise InputError(
            f"R1 and R2 hold different numbers of reads: {r1.path} has {r1.reads:,}, {r2.path} has {r2.reads:,}",
            hint="paired files must list mates in the same order; one file may be truncated or from another sample",
        )
    for number, (name1, name2) in enumerate(zip(r1.first_names, r2.first_names, strict=False), start=1):
        if name1 != name2:
            raise InputError(
                f"R1 and R2 are not mates: record {number:,} is named {shown(name1)} in {r1.path} "
                f"but {shown(name2)} in {r2.path}",
                hint="paired files must list mates in the same order (names may differ only by /1 and /2); "
                     "were they taken from two samples, or was one sorted or filtered alone?",
            )
