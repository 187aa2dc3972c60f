"""Score the calls of a VCF against a truth set of known variants.

    python3 compare_truth.py --vcf SAMPLE.vcf.gz --truth TRUTH.tsv --out truth.json

The compare-truth step of the variant-calling pipeline pastes this file verbatim into its script and
runs it with `python3 -` (see workflow.yaml.j2); tests/integration/test_variant_calling.py runs it
as a file. Standard library only: it runs in the fastqc image, whose python3 is MultiQC's.

The truth set is a TSV of chrom, pos (1-based, as in VCF), ref, alt; a header line and '#' comment
lines are allowed. A called variant is one ALT allele of a VCF record whose FILTER is PASS or '.'
(`bcftools call -v` writes variant sites only, unfiltered). Variants are compared exactly, as
(chrom, pos, ref, alt): that is right for SNPs; indels written differently on each side (left- vs
right-aligned) would need `bcftools norm` on both first.

It writes OUT (JSON): truth, called, tp, fp, fn, recall = tp/truth, precision = tp/called (0 when
nothing was called), both rounded to 4 places, and the variants missed and called falsely as
"chrom:pos ref>alt". With --truth "" (no truth set given) it writes {"truth": 0} only: the run's
summary line, which needs recall and precision, is then left out.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys

GZIP_MAGIC = b"\x1f\x8b"  # BGZF, what `bcftools call -Oz` writes, is a series of gzip members
BASES = frozenset("ACGTN")


class TruthError(Exception):
    pass


def read_truth(path: str) -> set[tuple[str, int, str, str]]:
    truth = set()
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            fields = line.split()
            if not fields or fields[0].startswith("#"):
                continue
            if number == 1 and fields[0].lower() == "chrom":
                continue  # the header
            if len(fields) != 4:
                raise TruthError(f"{path} line {number}: expected 4 columns (chrom, pos, ref, alt), got {len(fields)}")
            chrom, pos, ref, alt = fields
            if not pos.isdigit() or int(pos) < 1:
                raise TruthError(f"{path} line {number}: pos {pos!r} is not a 1-based position")
            ref, alt = ref.upper(), alt.upper()
            if not set(ref) <= BASES or not set(alt) <= BASES or ref == alt:
                raise TruthError(f"{path} line {number}: {ref}>{alt} is not a variant of bases ACGTN")
            truth.add((chrom, int(pos), ref, alt))
    return truth


def read_calls(path: str) -> tuple[set[tuple[str, int, str, str]], set[str]]:
    """The VCF's called alleles, and the contigs its header names."""
    with open(path, "rb") as f:
        gzipped = f.read(2) == GZIP_MAGIC
    calls, contigs = set(), set()
    with (gzip.open(path, "rt", encoding="utf-8") if gzipped else open(path, encoding="utf-8")) as f:
        for line in f:
            if line.startswith("##contig=<"):
                for item in line.strip()[len("##contig=<"):-1].split(","):
                    if item.startswith("ID="):
                        contigs.add(item[3:])
                continue
            if line.startswith("#"):
                continue
            fields = line.rstrip("\n").split("\t")
            chrom, pos, _id, ref, alts, _qual, filt = fields[:7]
            if filt not in ("PASS", "."):
                continue
            for alt in alts.split(","):
                # '*' (a deletion upstream) and '<*>' (gVCF's any other allele) are not variants here.
                if alt in ("*", "<*>", "."):
                    continue
                calls.add((chrom, int(pos), ref.upper(), alt.upper()))
    return calls, contigs


def shown(variants: set[tuple[str, int, str, str]]) -> list[str]:
    return [f"{c}:{p} {r}>{a}" for c, p, r, a in sorted(variants)]


def score(calls: set, truth: set) -> dict:
    tp = calls & truth
    return {
        "truth": len(truth),
        "called": len(calls),
        "tp": len(tp),
        "fp": len(calls - truth),
        "fn": len(truth - calls),
        "recall": round(len(tp) / len(truth), 4),
        # Nothing called: no call was right (0, as scikit-learn's precision_score defaults to).
        "precision": round(len(tp) / len(calls), 4) if calls else 0.0,
        "missed": shown(truth - calls),
        "false_positives": shown(calls - truth),
    }


def write_json(path: str, data: dict) -> None:
    """Whole or not at all: a killed step never leaves half a file for --resume to trust."""
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Score a VCF's calls against a truth set (chrom, pos, ref, alt).")
    parser.add_argument("--vcf", required=True)
    parser.add_argument("--truth", required=True, help='the truth TSV; "" when there is none')
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    if not args.truth:
        write_json(args.out, {"truth": 0})
        print("compare-truth: no truth set given; the calls are not scored")
        return 0
    try:
        truth = read_truth(args.truth)
        calls, contigs = read_calls(args.vcf)
    except (OSError, UnicodeDecodeError, TruthError) as exc:
        print(f"compare-truth: {exc}", file=sys.stderr)
        return 2
    except (ValueError, IndexError) as exc:
        print(f"compare-truth: {args.vcf} is not a readable VCF: {exc}", file=sys.stderr)
        return 2
    if not truth:
        write_json(args.out, {"truth": 0})
        print(f"compare-truth: {args.truth} lists no variants; the calls are not scored")
        return 0
    strangers = sorted({t[0] for t in truth} - contigs)
    if contigs and strangers:
        # Most likely a truth set for another reference (e.g. the bundled one with your own data).
        print(f"compare-truth: warning: the truth set names chromosomes the reference does not have: "
              f"{', '.join(strangers[:5])}", file=sys.stderr)
    result = score(calls, truth)
    write_json(args.out, result)
    print(f"compare-truth: recall {result['recall']} ({result['tp']}/{result['truth']}), "
          f"precision {result['precision']} ({result['tp']}/{result['called']})")
    for label, key in (("missed", "missed"), ("false positive", "false_positives")):
        for variant in result[key]:
            print(f"  {label}: {variant}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
