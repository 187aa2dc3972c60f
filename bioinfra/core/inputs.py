"""Checking inputs: a bounded look before any step runs, the whole file during the run.

Before anything is created (`quick_fastq`), a FASTQ is looked at in constant time, whatever its
size: it exists, is readable and not empty; its first records parse as FASTQ (their names are kept
to compare R1 with R2); a gzip file's end is a complete gzip member (its CRC-32 and ISIZE trailer
verified by zlib) where that can be found in the last TAIL_BYTES; and its identity is a cheap
fingerprint (size, mtime_ns, inode, device, SHA-256 of the first and last MiB), not a full digest.

The end-to-end read (`inspect_fastq`: SHA-256, read count, every gzip member, a record count that is
a multiple of four) runs inside the run, beside the first steps (bioinfra.engine.inputs
verify_inputs); a file of at most WHOLE_READ_BYTES is still read whole up front, which is as cheap.
A reference FASTA is treated the same way (`quick_fasta` before, `inspect_fasta` during the run).
A problem is an InputError naming the file and what to do.
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


# A file up to this size is read end to end before the run (a few tens of milliseconds); a larger one
# gets the bounded checks below, and its whole read is done during the run.
WHOLE_READ_BYTES = 2 << 20
# How much of a file's start is decompressed to check its first records, and how much of its end is
# searched for the last gzip member.
HEAD_BYTES = 1 << 16
TAIL_BYTES = 1 << 20
FINGERPRINT_BYTES = 1 << 20


@dataclass(frozen=True)
class FastqFacts:
    path: Path
    sha256: Optional[str]  # None: not read whole yet (quick_fastq); the full digest comes from the run
    bytes: int
    reads: Optional[int]  # None: counted during the run
    gzipped: bool
    # The names of the first records (up to PAIR_CHECK_RECORDS), as bwa compares mates: the first
    # word of the '@' line without a trailing /1 or /2.
    first_names: tuple[bytes, ...] = ()
    fingerprint: str = ""  # quick_fingerprint, when sha256 is None
    role: str = ""  # how messages name the file ("R1 file", "sample a (line 2) r1")

    @property
    def complete(self) -> bool:
        """Read end to end (digest, read count, whole gzip stream checked)."""
        return self.sha256 is not None

    @property
    def key(self) -> str:
        """The content-addressed workspace folder's name: the SHA-256's first 16 hex digits, or
        'q' and the quick fingerprint's first 15 (a different namespace: never the same folder)."""
        return self.sha256[:16] if self.sha256 else "q" + self.fingerprint[:15]


# How many leading records of R1 and R2 are compared by name before anything runs: enough to catch
# files from two samples, or one file sorted or filtered alone, which bwa would only refuse at align
# ("paired reads have different names"), after FastQC and indexing.
PAIR_CHECK_RECORDS = 1000


@dataclass(frozen=True)
class FastaFacts:
    path: Path
    sha256: Optional[str]  # None: not read whole yet (quick_fasta); the full digest comes from the run
    bytes: int
    sequences: Optional[int]  # None with sha256: counted during the run
    length: Optional[int]
    gzipped: bool
    fingerprint: str = ""  # quick_fingerprint, when sha256 is None
    role: str = ""

    @property
    def complete(self) -> bool:
        """Read end to end (digest, every line checked, whole gzip stream checked)."""
        return self.sha256 is not None

    @property
    def key(self) -> str:
        """The content-addressed workspace folder's name, as FastqFacts.key."""
        return self.sha256[:16] if self.sha256 else "q" + self.fingerprint[:15]


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
        raise _truncated(path, role)
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
                      first_names=_first_names(bytes(head)), role=role)


def check_fastq(path: Path, role: str = "FASTQ", progress: Progress = None) -> FastqFacts:
    """The check made before a run: a small file read whole (inspect_fastq), a larger one looked at
    in bounded time (quick_fastq; the rest of it is read during the run)."""
    return _whole_or_quick(path, role, progress, inspect_fastq, quick_fastq)


def _whole_or_quick(path: Path, role: str, progress: Progress, whole: Callable, quick: Callable) -> Any:
    """A file of at most WHOLE_READ_BYTES read whole now (as cheap as looking), a larger one `quick`."""
    path = Path(path)
    _must_be_readable_file(path, role)
    if path.stat().st_size <= WHOLE_READ_BYTES:
        return whole(path, role, progress)
    return quick(path, role)


def quick_fastq(path: Path, role: str = "FASTQ") -> FastqFacts:
    """Bounded checks of a FASTQ of any size, reading at most HEAD_BYTES of output from its start and
    TAIL_BYTES + 2 x FINGERPRINT_BYTES of the file: readable, not empty, its first records FASTQ, a
    gzip file not cut short (where its end shows it: _gzip_end), and its quick fingerprint."""
    path = Path(path)
    _must_be_readable_file(path, role)
    gz = _is_gzip(path)
    head = _head(path, role, gz)
    if not head.strip():
        raise InputError(f"{role} {path} holds no reads", hint="an empty FASTQ usually means an upstream step failed")
    _check_fastq_head(head, path, role)
    if gz and _gzip_end(path) is False:
        raise _truncated(path, role)
    return FastqFacts(path=path, sha256=None, bytes=path.stat().st_size, reads=None, gzipped=gz,
                      first_names=_first_names(head), fingerprint=quick_fingerprint(path), role=role)


def quick_fingerprint(path: Path) -> str:
    """A file's identity without reading it whole: SHA-256 over its size, mtime_ns, inode and device
    and its first and last FINGERPRINT_BYTES. It changes when the file is replaced, rewritten or
    touched; an edit inside the middle that keeps the size and restores the mtime goes unseen (the
    full digest computed during the run catches that: bioinfra.engine.inputs.verify_inputs)."""
    st = path.stat()
    digest = hashlib.sha256(f"{st.st_size}:{st.st_mtime_ns}:{st.st_ino}:{st.st_dev}:".encode())
    with open(path, "rb") as fh:
        digest.update(fh.read(FINGERPRINT_BYTES))
        if st.st_size > FINGERPRINT_BYTES:
            fh.seek(max(FINGERPRINT_BYTES, st.st_size - FINGERPRINT_BYTES))
            digest.update(fh.read(FINGERPRINT_BYTES))
    return digest.hexdigest()


def _truncated(path: Path, role: str) -> InputError:
    return InputError(
        f"{role} {path} is a truncated gzip file (it ends before the compressed stream does)",
        hint="the copy or download was cut short: fetch the file again and compare its checksum",
    )


def _head(path: Path, role: str, gz: bool) -> bytes:
    """The first HEAD_BYTES of the file's (decompressed) content; several gzip members followed."""
    with open(path, "rb") as fh:
        if not gz:
            return fh.read(HEAD_BYTES)
        out = bytearray()
        decomp = zlib.decompressobj(wbits=31)
        while len(out) < HEAD_BYTES and (data := fh.read(HEAD_BYTES)):
            while data and len(out) < HEAD_BYTES:
                try:
                    out += decomp.decompress(data, HEAD_BYTES - len(out))
                except zlib.error as exc:
                    raise InputError(f"{role} {path} is not a valid gzip file ({exc})",
                                     hint="re-copy or re-download it") from None
                if not decomp.eof:
                    data = decomp.unconsumed_tail
                    continue
                data = decomp.unused_data
                if data and not data.startswith(b"\x1f\x8b"):
                    return bytes(out)  # what follows is for the whole read to judge
                decomp = zlib.decompressobj(wbits=31)
        return bytes(out)


_MEMBER_START = b"\x1f\x8b\x08"  # ID1 ID2 CM=8 (deflate): RFC 1952 section 2.3.1
_TAIL_OUTPUT_LIMIT = 64 << 20  # decompressed bytes looked at in the tail before giving up (undecided)


def _gzip_end(path: Path) -> Optional[bool]:
    """Whether a gzip file ends where its last member ends, from its last TAIL_BYTES only.

    RFC 1952 (https://www.rfc-editor.org/rfc/rfc1952#section-2.2): a gzip file is a series of
    members, each a header (ID1=0x1f ID2=0x8b CM=8 ...), deflate blocks, then CRC32 and ISIZE (the
    last 8 bytes); bgzip writes members of at most 64 KiB. No field gives a member's length, so the
    last 8 bytes alone cannot tell a trailer from the middle of a cut deflate stream. Instead each
    header signature in the tail is tried as a member start: decompressed (zlib checks every
    member's CRC32 and ISIZE, https://www.zlib.net/manual.html inflate), members must follow one
    another to the file's end. True: one did (complete). False: at least one whole member decoded,
    verified by its CRC, and the one after it is cut short (truncated). None: undecided, e.g. one
    large member that started before the tail (plain `gzip` output): the whole read during the run
    decides."""
    size = path.stat().st_size
    start = max(0, size - TAIL_BYTES)
    with open(path, "rb") as fh:
        fh.seek(start)
        tail = fh.read()
    offsets = [0] if start == 0 else [m for m in _find_all(tail, _MEMBER_START)]
    for offset in offsets:
        verdict = _members_to_end(tail[offset:], first_is_file_start=start == 0)
        if verdict is not None:
            return verdict
    return None


def _find_all(data: bytes, needle: bytes) -> list[int]:
    found, at = [], data.find(needle)
    while at != -1:
        found.append(at)
        at = data.find(needle, at + 1)
    return found


def _members_to_end(data: bytes, *, first_is_file_start: bool) -> Optional[bool]:
    """Decode gzip members back to back from `data` (see _gzip_end for the verdicts)."""
    complete = 0
    budget = _TAIL_OUTPUT_LIMIT
    while data:
        decomp = zlib.decompressobj(wbits=31)
        rest = data
        try:
            while rest and not decomp.eof and budget > 0:
                budget -= len(decomp.decompress(rest, 1 << 20))
                rest = decomp.unconsumed_tail
        except zlib.error:
            return None  # a false start (the signature inside compressed data) or corrupt: the run decides
        if budget <= 0 and not decomp.eof:
            return None
        if not decomp.eof:  # the data ran out inside this member
            return False if (complete or first_is_file_start) else None
        complete += 1
        data = decomp.unused_data
        if data and not data.startswith(b"\x1f\x8b"):
            return True if not data.strip(b"\0") else None  # zero padding some tools write, or junk: the run decides
    return True


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


def _fasta_lines(lines: list[bytes], line_no: int, sequences: int, length: int, path: Path, role: str
                 ) -> tuple[int, int]:
    """FASTA lines checked (a '>name' line before any sequence, sequence lines of letters), the first
    being line `line_no` + 1; returns the sequences and bases counted so far. inspect_fasta feeds it
    the whole file chunk by chunk, quick_fasta its first HEAD_BYTES."""
    for line in lines:
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
    return sequences, length


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
        pending = lines.pop() if chunk else b""  # at the end (b""), the last line is in `lines`
        sequences, length = _fasta_lines(lines, line_no, sequences, length, path, role)
        line_no += len(lines)
    if sequences == 0 or length == 0:
        raise InputError(f"{role} {path} is not FASTA: it has no '>name' line or no sequence")
    return FastaFacts(path=path, sha256=digest.hexdigest(), bytes=path.stat().st_size, sequences=sequences, length=length,
                      gzipped=gz, role=role)


def check_fasta(path: Path, role: str = "reference", progress: Progress = None) -> FastaFacts:
    """The check made before a run, as check_fastq: a small reference read whole, a larger one looked
    at in bounded time (quick_fasta; inspect_fasta reads it beside the first steps: a 100 Mb genome
    took 1.0 s to read whole, GRCh38 would take ~30 s before anything started)."""
    return _whole_or_quick(path, role, progress, inspect_fasta, quick_fasta)


def quick_fasta(path: Path, role: str = "reference") -> FastaFacts:
    """Bounded checks of a FASTA of any size: readable, its first HEAD_BYTES of content FASTA (a
    '>name' line first, sequence lines after), a gzip file not cut short where its end shows it, and
    its quick fingerprint. The rest is read during the run (inspect_fasta, engine.inputs.verify_inputs)."""
    path = Path(path)
    _must_be_readable_file(path, role)
    gz = _is_gzip(path)
    head = _head(path, role, gz)
    lines = head.split(b"\n")
    if len(head) >= HEAD_BYTES:
        lines.pop()  # cut at HEAD_BYTES: the last line may go on
    sequences, _ = _fasta_lines(lines, 0, 0, 0, path, role)
    if sequences == 0:
        raise InputError(f"{role} {path} is not FASTA: it has no '>name' line or no sequence")
    if gz and _gzip_end(path) is False:
        raise _truncated(path, role)
    return FastaFacts(path=path, sha256=None, bytes=path.stat().st_size, sequences=None, length=None, gzipped=gz,
                      fingerprint=quick_fingerprint(path), role=role)


def check_distinct(r1: Path, r2: Path) -> None:
    """Before reading anything: R1 and R2 must be two files."""
    if r1.exists() and r2.exists() and r1.resolve() == r2.resolve():
        raise InputError(f"--r1 and --r2 are the same file ({r1})", hint="give the read 1 and read 2 files of the pair")


def check_pair(r1: FastqFacts, r2: FastqFacts) -> None:
    """Mates: the same number of reads (when both were counted) and the same names at the start."""
    if r1.reads is not None and r2.reads is not None and r1.reads != r2.reads:
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
