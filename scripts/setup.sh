#!/usr/bin/env bash
# Install what `make demo` and `make test` need on a Debian machine, skipping what is already there.
#   - apt: the native runtime's tools (fastqc, bwa, samtools, bcftools, multiqc) and python3-venv if missing
#   - .venv: bioinfra itself (editable) with its test extras
# Needs root (or sudo) only when an apt package is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}

apt_missing=()
for tool in fastqc bwa samtools bcftools multiqc; do
  command -v "$tool" >/dev/null 2>&1 || apt_missing+=("$tool")
done
if ! command -v "$PYTHON" >/dev/null 2>&1; then
  apt_missing+=(python3 python3-venv)
elif ! "$PYTHON" -c 'import venv, ensurepip' >/dev/null 2>&1; then
  apt_missing+=(python3-venv)
fi
if ((${#apt_missing[@]})); then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  echo "setup: installing from apt: ${apt_missing[*]}" >&2
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${apt_missing[@]}" >/dev/null
fi

stamp="$VENV/.bioinfra-installed"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "setup: installing bioinfra into $VENV" >&2
  [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q -e '.[test]'
  touch "$stamp"
fi
