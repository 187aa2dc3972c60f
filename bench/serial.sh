#!/usr/bin/env bash
# The fastqc-to-bwa demo as a plain serial shell script: the baseline `make bench` compares with.
# Same tools, same options as the Workflow's steps; one after another. OUTDIR/timings.tsv: per step
# name, wall, user and system seconds (bash's `time`, children included).
#   serial.sh R1 R2 REFERENCE OUTDIR THREADS
set -euo pipefail
r1=$1 r2=$2 ref=$3 out=$4 threads=$5
mkdir -p "$out"/{fastqc,ref,align,stats,multiqc}
timings="$out/timings.tsv"
: > "$timings"
step() {  # step NAME COMMAND...: run it and record its wall, user and system seconds
  local name=$1; shift
  local TIMEFORMAT=$'%R\t%U\t%S' report
  # `time` reports on the shell's stderr: the command keeps the real stderr (fd 3), the report
  # alone is captured.
  { report=$( { time "$@" 2>&3 3>&-; } 3>&2 2>&1 >/dev/null ); } 3>&2
  echo -e "$name\t$report" >> "$timings"
}
ln -sf "$(realpath "$r1")" "$out/lambda_R1.fastq.gz"
ln -sf "$(realpath "$r2")" "$out/lambda_R2.fastq.gz"
cp "$ref" "$out/ref/reference.fa.gz"
export LC_ALL=C
step fastqc-r1 fastqc --quiet --threads 1 --extract --outdir "$out/fastqc" "$out/lambda_R1.fastq.gz"
step fastqc-r2 fastqc --quiet --threads 1 --extract --outdir "$out/fastqc" "$out/lambda_R2.fastq.gz"
step index-reference bwa index "$out/ref/reference.fa.gz" 2>/dev/null
align() {
  bwa mem -t "$threads" -K 10000000 -R '@RG\tID:lambda\tSM:lambda' "$out/ref/reference.fa.gz" \
      "$out/lambda_R1.fastq.gz" "$out/lambda_R2.fastq.gz" 2>/dev/null \
    | samtools sort -@ "$threads" -m 512M -o "$out/align/lambda.sorted.bam" -
  samtools index "$out/align/lambda.sorted.bam"
}
step align align
stats() {
  samtools flagstat "$out/align/lambda.sorted.bam" > "$out/stats/lambda.flagstat.txt"
  samtools stats "$out/align/lambda.sorted.bam" > "$out/stats/lambda.stats.txt"
  samtools idxstats "$out/align/lambda.sorted.bam" > "$out/stats/lambda.idxstats.txt"
}
step stats stats
step multiqc multiqc --quiet --force --no-ansi --cl-config "no_version_check: true" \
    --filename multiqc_report.html --outdir "$out/multiqc" "$out/fastqc" "$out/stats"
