"""A tiny synthetic high-content screen for the `cellprofiler` pipeline: nuclei in one DNA channel.

2 plates (P1, P2) x 4 wells (A01, A02, B01, B02) x 2 sites = 16 image sets, one 8-bit grayscale
PNG each (`<Plate>_<Well>_s<Site>_w1.png`, 128 x 128 px), plus
- `images.csv`: the CellProfiler LoadData data file (Metadata_Plate, Metadata_Well, Metadata_Site,
  FileName_DNA, PathName_DNA). PathName_DNA is "." because the pipeline's planning step rewrites it
  to an absolute folder at run time.
- `truth.csv`: the same keys and file name with `planted_nuclei`, the number of nuclei drawn.

What an image holds, and why:
- nuclei are round to slightly elliptical blobs (mean radius 4-6.5 px, axis ratio <= 1.56) with a
  soft edge and a slight dome, so once smoothed each one has a single intensity peak;
- no two nuclei come closer than GAP_PX edge to edge (so >= 14 px centre to centre) and none lies
  within BORDER_PX of the border, so every planted nucleus is one object that IdentifyPrimaryObjects
  keeps (it discards objects touching the border);
- the nuclear signal above BACKGROUND varies about 3-fold (NUCLEUS_AMPLITUDE), with Poisson-like
  noise (sigma = NOISE_GAIN * sqrt(mean));
- everything is multiplied by a vignetting field (1.0 in the centre, VIGNETTE_CORNER at the
  corners), so raw nuclear intensities depend on where a nucleus lies; illumination correction
  removes that. Counts depend on it only a little, as even uncorrected almost every nucleus stays
  above one global threshold: over 11 seeds, without correction 0-2 of the 16 images miscount by
  one or two nuclei (the bundled seed 7: none); with it, none.
- the planted count differs per well (6..20 per image), so plate maps show a pattern.

Tolerance contract (tests/integration/test_screening_cellprofiler.py, with the bundled .cppipe
files): after illumination correction, CellProfiler's per-image Count_Nuclei equals `planted_nuclei`
EXACTLY (COUNT_TOLERANCE = 0), and Nuclei.csv has one row per counted nucleus. The separation, the
border margin and the dimmest nucleus (NUCLEUS_AMPLITUDE[0], about 12 noise sigmas above the
background) are what make an exact count a fair demand; seeds 1-16 all counted exactly.

Determinism: only `random.Random(seed)` draws and correctly rounded arithmetic (+, -, *, /,
math.sqrt) produce pixel values, never libm's transcendental functions, so the pixels are the same
on every platform. The PNG IDAT stream is zlib level 9: the same bytes from the same zlib build,
but another zlib (e.g. zlib-ng) may compress the same pixels differently, which is why the
bundled-sample test compares decoded pixels for PNGs and raw bytes for everything else.

Regenerate the bundled sample with
    python -m bioinfra.sampledata.screening bioinfra/sampledata/data/cellprofiler/images
"""

from __future__ import annotations

import csv
import io
import math
import random
import struct
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

PLATES = ("P1", "P2")
WELLS = ("A01", "A02", "B01", "B02")
SITES = (1, 2)
WIDTH = HEIGHT = 128
CHANNEL = "DNA"
DATA_FILE = "images.csv"
TRUTH_FILE = "truth.csv"

MIN_NUCLEI, MAX_NUCLEI = 6, 20
RADIUS_RANGE = (4.0, 6.5)  # mean radius (px); axes are r*e and r/e
MAX_ELONGATION = 1.25  # e: the major/minor axis ratio e**2 is at most ~1.56
EDGE_OUTER = 1.15  # the blob fades out between 0.85 and 1.15 of its radius
GAP_PX = 5.0  # minimum edge-to-edge distance between two nuclei (outer extents)
BORDER_PX = 6.0  # minimum distance from a nucleus' outer extent to the image border
BACKGROUND = 60.0  # mean background before vignetting (8-bit grey levels)
NUCLEUS_AMPLITUDE = (55.0, 160.0)  # added above background at the blob's core, before vignetting
NOISE_GAIN = 0.6  # noise sigma = NOISE_GAIN * sqrt(mean): Poisson-like, a little gentler
VIGNETTE_CORNER = 0.55  # illumination at the corners relative to the centre

# Unit vectors (cos, sin) with exact rational components: ellipse orientations without cos/sin calls.
_ORIENTATIONS = ((1.0, 0.0), (0.8, 0.6), (0.6, 0.8), (0.0, 1.0), (-0.6, 0.8), (-0.8, 0.6))


@dataclass(frozen=True)
class Nucleus:
    x: float
    y: float
    radius: float
    elongation: float
    orientation: tuple[float, float]
    amplitude: float

    @property
    def extent(self) -> float:
        """Radius of a circle that holds every pixel the nucleus brightens."""
        return self.radius * self.elongation * EDGE_OUTER


@dataclass(frozen=True)
class ImageSetFacts:
    plate: str
    well: str
    site: int
    file_name: str
    planted_nuclei: int


@dataclass(frozen=True)
class ScreenFacts:
    out_dir: Path
    data_file: Path
    truth_file: Path
    image_sets: tuple[ImageSetFacts, ...]
    width: int = WIDTH
    height: int = HEIGHT

    @property
    def total_nuclei(self) -> int:
        return sum(s.planted_nuclei for s in self.image_sets)


def file_name(plate: str, well: str, site: int) -> str:
    return f"{plate}_{well}_s{site}_w1.png"


def vignette(x: float, y: float, width: int = WIDTH, height: int = HEIGHT) -> float:
    """Multiplicative illumination: 1 at the centre, falling quadratically to VIGNETTE_CORNER at the corners."""
    cx, cy = (width - 1) / 2, (height - 1) / 2
    r2 = ((x - cx) ** 2 + (y - cy) ** 2) / (cx * cx + cy * cy)
    return 1.0 - (1.0 - VIGNETTE_CORNER) * r2


def _edge_profile(d: float) -> float:
    """Blob brightness at normalised elliptical distance d: a gentle dome, then a smoothstep fade."""
    if d >= EDGE_OUTER:
        return 0.0
    dome = 1.0 - 0.2 * d * d
    if d <= 0.85:
        return dome
    t = (EDGE_OUTER - d) / (EDGE_OUTER - 0.85)
    return dome * t * t * (3.0 - 2.0 * t)


def place_nuclei(count: int, rng: random.Random, width: int = WIDTH, height: int = HEIGHT) -> list[Nucleus]:
    """`count` non-overlapping nuclei away from the border (random sequential placement, restarted if stuck)."""
    for _restart in range(100):
        placed: list[Nucleus] = []
        for _attempt in range(count * 400):
            if len(placed) == count:
                break
            radius = rng.uniform(*RADIUS_RANGE)
            elongation = rng.uniform(1.0, MAX_ELONGATION)
            extent = radius * elongation * EDGE_OUTER
            margin = extent + BORDER_PX
            x = rng.uniform(margin, width - 1 - margin)
            y = rng.uniform(margin, height - 1 - margin)
            if all((x - n.x) ** 2 + (y - n.y) ** 2 >= (extent + n.extent + GAP_PX) ** 2 for n in placed):
                amplitude = rng.uniform(*NUCLEUS_AMPLITUDE)
                placed.append(Nucleus(x, y, radius, elongation, rng.choice(_ORIENTATIONS), amplitude))
        if len(placed) == count:
            return placed
    raise RuntimeError(f"could not place {count} nuclei in a {width}x{height} field")


def render(nuclei: list[Nucleus], rng: random.Random, width: int = WIDTH, height: int = HEIGHT) -> bytearray:
    """8-bit pixels, row-major: (background + nuclei) x vignetting + Poisson-like noise."""
    signal = [BACKGROUND] * (width * height)
    for n in nuclei:
        c, s = n.orientation
        a, b = n.radius * n.elongation, n.radius / n.elongation  # semi-axes
        x0, x1 = max(0, int(n.x - n.extent) - 1), min(width - 1, int(n.x + n.extent) + 1)
        y0, y1 = max(0, int(n.y - n.extent) - 1), min(height - 1, int(n.y + n.extent) + 1)
        for y in range(y0, y1 + 1):
            for x in range(x0, x1 + 1):
                dx, dy = x - n.x, y - n.y
                u, v = (dx * c + dy * s) / a, (-dx * s + dy * c) / b
                value = _edge_profile(math.sqrt(u * u + v * v))
                if value:
                    signal[y * width + x] += n.amplitude * value
    pixels = bytearray(width * height)
    for y in range(height):
        for x in range(width):
            mean = signal[y * width + x] * vignette(x, y, width, height)
            # Sum of 4 uniforms (Irwin-Hall), scaled to unit variance: a normal-ish draw with no libm calls.
            z = (rng.random() + rng.random() + rng.random() + rng.random() - 2.0) * 1.7320508075688772
            pixels[y * width + x] = max(0, min(255, int(mean + NOISE_GAIN * math.sqrt(mean) * z + 0.5)))
    return pixels


def png_bytes(pixels: bytes, width: int, height: int) -> bytes:
    """An 8-bit grayscale PNG (filter type 0 on every row)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\x00" + bytes(pixels[y * width : (y + 1) * width]) for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def _well_counts(rng: random.Random) -> dict[tuple[str, str, int], int]:
    """Distinct base counts per well within a plate, each site a little above its well's base."""
    counts = {}
    for plate in PLATES:
        bases = rng.sample(range(MIN_NUCLEI, MAX_NUCLEI - 1), len(WELLS))
        for well, base in zip(WELLS, bases, strict=True):
            for site in SITES:
                counts[plate, well, site] = base + rng.randint(0, 2)
    return counts


def _csv_text(header: list[str], rows: list[list]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


def layout(seed: int = 7) -> list[tuple[ImageSetFacts, list[Nucleus]]]:
    """Every image set and the nuclei planted in it, without drawing pixels."""
    rng = random.Random(seed)
    counts = _well_counts(rng)
    sets = []
    for plate in PLATES:
        for well in WELLS:
            for site in SITES:
                nuclei = place_nuclei(counts[plate, well, site], rng)
                sets.append((ImageSetFacts(plate, well, site, file_name(plate, well, site), len(nuclei)), nuclei))
    return sets


def write_screen(out_dir: Path, *, seed: int = 7) -> ScreenFacts:
    """Write the 16 PNGs, images.csv and truth.csv into out_dir; the same seed gives the same files."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    facts = []
    for image_set, nuclei in layout(seed):
        # Noise from its own stream per image: an image's pixels depend only on the seed and its name.
        noise = random.Random(f"{seed}:noise:{image_set.file_name}")
        (out_dir / image_set.file_name).write_bytes(png_bytes(render(nuclei, noise), WIDTH, HEIGHT))
        facts.append(image_set)
    keys = ["Metadata_Plate", "Metadata_Well", "Metadata_Site"]
    data_file, truth_file = out_dir / DATA_FILE, out_dir / TRUTH_FILE
    data_file.write_text(
        _csv_text(
            [*keys, f"FileName_{CHANNEL}", f"PathName_{CHANNEL}"],
            [[f.plate, f.well, f.site, f.file_name, "."] for f in facts],
        )
    )
    truth_file.write_text(
        _csv_text(
            [*keys, f"FileName_{CHANNEL}", "planted_nuclei"],
            [[f.plate, f.well, f.site, f.file_name, f.planted_nuclei] for f in facts],
        )
    )
    return ScreenFacts(out_dir, data_file, truth_file, tuple(facts))


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) not in (1, 2) or args[0].startswith("-"):
        print("usage: python -m bioinfra.sampledata.screening OUT_DIR [SEED]", file=sys.stderr)
        return 2
    facts = write_screen(Path(args[0]), seed=int(args[1]) if len(args) == 2 else 7)
    print(f"wrote {len(facts.image_sets)} image sets, {facts.total_nuclei} planted nuclei, to {facts.out_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
