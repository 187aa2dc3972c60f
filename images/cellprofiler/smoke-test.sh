#!/bin/sh
# bioinfra smoke test for the cellprofiler image: runs inside the container, exits non-zero on failure.
# Segments two 64x64 PNGs with 3 and 4 planted bright disks; expects 7 nuclei in total.
set -eu

DATA=/usr/local/share/bioinfra-smoke
work=$(mktemp -d "${TMPDIR:-/tmp}/bioinfra-smoke.XXXXXX")
trap 'rm -rf "$work"' EXIT

echo "== versions"
python3 --version
python3 -c 'from importlib.metadata import version; print("cellprofiler", version("cellprofiler-nightly")); print("cellprofiler-core", version("cellprofiler-core-nightly"))'

echo "== cellprofiler -c -r on $DATA/images (2 PNGs)"
mkdir "$work/out"
cellprofiler -c -r -p "$DATA/pipeline.cppipe" -i "$DATA/images" -o "$work/out" > "$work/cellprofiler.log" 2>&1 || {
    echo "FAIL: cellprofiler exited non-zero; log:" >&2
    cat "$work/cellprofiler.log" >&2
    exit 1
}
csv="$work/out/MyExpt_Nuclei.csv"
if [ ! -s "$csv" ]; then
    echo "FAIL: $csv not written; log:" >&2
    cat "$work/cellprofiler.log" >&2
    exit 1
fi
rows=$(($(wc -l < "$csv") - 1))
if [ "$rows" -ne 7 ]; then
    echo "FAIL: expected 7 data rows (3 + 4 nuclei) in MyExpt_Nuclei.csv, got $rows" >&2
    exit 1
fi
echo "MyExpt_Nuclei.csv: $rows data rows (3 + 4 planted disks)"
echo "SMOKE TEST PASSED"
