#!/bin/sh
# bioinfra smoke test for the fastqc image: runs inside the container, exits non-zero on failure.
set -eu

DATA=/usr/local/share/bioinfra-smoke
work=$(mktemp -d "${TMPDIR:-/tmp}/bioinfra-smoke.XXXXXX")
trap 'rm -rf "$work"' EXIT

echo "== versions"
fastqc --version
multiqc --version
bash --version | head -n 1
gawk --version | head -n 1
rclone version | head -n 1

echo "== fastqc on $DATA/tiny.fastq (8 reads)"
mkdir "$work/fastqc"
fastqc --quiet --outdir "$work/fastqc" "$DATA/tiny.fastq"
test -s "$work/fastqc/tiny_fastqc.html"
test -s "$work/fastqc/tiny_fastqc.zip"

echo "== multiqc over the fastqc output"
multiqc --cl-config "no_version_check: true" --quiet --outdir "$work/multiqc" "$work/fastqc"
test -s "$work/multiqc/multiqc_report.html"
stats="$work/multiqc/multiqc_data/multiqc_fastqc.txt"
test -s "$stats"
total=$(gawk -F '\t' 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "Total Sequences") c = i; next }
                      c { print $c + 0 }' "$stats")
if [ "$total" != "8" ]; then
    echo "FAIL: expected 8 total sequences in $stats, got '$total'" >&2
    exit 1
fi
echo "multiqc_fastqc.txt: Total Sequences = $total"

echo "== rclone copyto with --checksum (local to local, as stage-in does into the workspace)"
rclone --config /dev/null copyto --checksum "$DATA/tiny.fastq" "$work/staged/inputs/tiny.fastq"
cmp "$DATA/tiny.fastq" "$work/staged/inputs/tiny.fastq"
echo "SMOKE TEST PASSED"
