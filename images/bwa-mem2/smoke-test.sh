#!/bin/sh
# bioinfra smoke test for the aligner image: runs inside the container, exits non-zero on failure.
# Indexes a 1 kb reference, aligns 4 read pairs with bwa-mem2 (or bwa), sorts and flagstats; bcftools runs.
set -eu

DATA=/usr/local/share/bioinfra-smoke
work=$(mktemp -d "${TMPDIR:-/tmp}/bioinfra-smoke.XXXXXX")
trap 'rm -rf "$work"' EXIT

if command -v bwa-mem2 >/dev/null 2>&1; then
    aligner=bwa-mem2
elif command -v bwa >/dev/null 2>&1; then
    aligner=bwa
else
    echo "FAIL: neither bwa-mem2 nor bwa is on PATH" >&2
    exit 1
fi

echo "== versions"
if [ "$aligner" = bwa-mem2 ]; then
    bwa-mem2 version
else
    # bwa has no --version; its usage text (exit status 1) carries it.
    bwa 2>&1 | grep -i '^version' || { echo "FAIL: cannot get bwa version" >&2; exit 1; }
fi
samtools --version | head -n 1
# The variant-calling pipeline's call and bcftools-stats steps run bcftools from this image.
# (POSIX sh has no pipefail: bcftools' own exit status is checked before head.)
bcftools --version > "$work/bcftools.version" || { echo "FAIL: bcftools does not run" >&2; exit 1; }
head -n 1 "$work/bcftools.version"
bash --version | head -n 1

echo "== $aligner index + mem (4 pairs) | samtools sort | samtools flagstat"
cp "$DATA/ref.fa" "$work/ref.fa"
"$aligner" index "$work/ref.fa" > "$work/index.log" 2>&1 || { cat "$work/index.log" >&2; exit 1; }
# POSIX sh has no pipefail: record the aligner's exit status from inside the pipeline.
{ "$aligner" mem -t 1 "$work/ref.fa" "$DATA/reads_1.fq" "$DATA/reads_2.fq" 2> "$work/mem.log" \
    || echo "$?" > "$work/mem.rc"; } \
    | samtools sort -o "$work/aln.bam" - 2> "$work/sort.log" \
    || { cat "$work/sort.log" >&2; echo "FAIL: samtools sort" >&2; exit 1; }
if [ -e "$work/mem.rc" ]; then
    cat "$work/mem.log" >&2
    echo "FAIL: $aligner mem exited $(cat "$work/mem.rc")" >&2
    exit 1
fi
samtools quickcheck "$work/aln.bam"
samtools flagstat "$work/aln.bam" | tee "$work/flagstat.txt"
total=$(awk 'NR == 1 { print $1 }' "$work/flagstat.txt")
mapped=$(awk '/ mapped \(/ { print $1; exit }' "$work/flagstat.txt")
# 4 pairs are too few for bwa to estimate an insert-size distribution, so "properly paired"
# stays 0; require both mates of every pair to be mapped instead.
paired=$(awk '/with itself and mate mapped/ { print $1; exit }' "$work/flagstat.txt")
if [ "$total" != 8 ] || [ "$mapped" != 8 ] || [ "$paired" != 8 ]; then
    echo "FAIL: expected 8 reads total/mapped/mate-mapped, got $total/$mapped/$paired" >&2
    exit 1
fi
echo "SMOKE TEST PASSED ($aligner: 8/8 reads mapped, all mates mapped)"
