#!/usr/bin/env bash
# Headless CellProfiler for the native runtime, in its own venv (.venv-cellprofiler, made once):
# the same packages and pins as images/cellprofiler (its requirements.txt), plus pyarrow for the
# gather step's Parquet copy. CellProfiler's four packages go in with --no-deps (they declare
# wxPython, which has no Linux wheel; headless runs never import it): see images/cellprofiler/README.md.
# Prints the venv's bin folder; put it first on PATH (or let `bioinfra run cellprofiler` find it).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${CELLPROFILER_VENV:-.venv-cellprofiler}
VERSION=$(sed -n 's/^ARG CELLPROFILER_VERSION=//p' images/cellprofiler/Dockerfile | head -n 1)
PYARROW=$(sed -n 's/^pyarrow==//p' images/cellprofiler/requirements.txt)
stamp="$VENV/.cellprofiler-$VERSION"

if [ ! -f "$stamp" ] || [ images/cellprofiler/requirements.txt -nt "$stamp" ]; then
  echo "cellprofiler: installing CellProfiler $VERSION into $VENV (about a minute)" >&2
  [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
  pip=("$VENV/bin/python" -m pip install -q --disable-pip-version-check --only-binary=:all:)
  "${pip[@]}" --no-deps --pre \
    "cellprofiler-nightly==$VERSION" "cellprofiler-core-nightly==$VERSION" \
    "cellprofiler-library-nightly==$VERSION" "centriole-nightly==$VERSION"
  "${pip[@]}" -r images/cellprofiler/requirements.txt
  "$VENV/bin/python" -c "import cellprofiler, cellprofiler_core, pyarrow" >&2
  touch "$stamp"
fi
cd "$VENV/bin" && pwd
