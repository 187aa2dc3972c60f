#!/usr/bin/env bash
# Static security scan of the Terraform with checkov. Renders the AWS stacks both ways (real AWS
# and the emulator profile), the GCP stacks twice (full: spot GPU pool, Filestore, GCS state;
# minimal: defaults), each with its addons stack, and the onprem addons stack three ways (in-cluster
# NFS server, an existing storage class, an existing NFS export) into a temp folder and scans them
# with their modules; exits non-zero on any failed check or a file checkov could not parse. Extra
# arguments go to checkov (-o json).
# checkov lives in its own venv (.venv-checkov, made once): its dependencies conflict with .venv's.
# Skips and their reasons: docs/notes/checkov.md.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=.venv-checkov
VERSION=3.3.30

if [ ! -f "$VENV/.checkov-$VERSION" ]; then
  echo "checkov: installing checkov==$VERSION into $VENV" >&2
  [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check "checkov==$VERSION"
  touch "$VENV/.checkov-$VERSION"
fi
[ -x .venv/bin/python ] || { echo "checkov: .venv missing, run scripts/setup.sh first" >&2; exit 2; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
.venv/bin/python - "$work" <<'EOF'
import sys
from pathlib import Path

from bioinfra.config import parse_config
from bioinfra.core.provision import render_environment

base = {"name": "demo", "target": "aws", "region": "eu-west-2",
        "node_pools": {"gpu": {"machine_type": "g5.xlarge", "max": 2, "gpu": {"count": 1}}}}
render_environment(parse_config(base), Path(sys.argv[1]) / "aws")
render_environment(parse_config({**base, "aws": {"endpoint_url": "http://127.0.0.1:4566"}}),
                   Path(sys.argv[1]) / "emulator")
gcp = {"name": "demo", "target": "gcp", "project": "my-project-123", "region": "europe-west2"}
render_environment(parse_config({
    **gcp,
    "node_pools": {"gpu": {"machine_type": "n1-standard-8", "max": 2, "spot": True,
                           "gpu": {"type": "nvidia-tesla-t4", "count": 1}}},
    "gcp": {"zones": ["europe-west2-a", "europe-west2-b"], "filestore": True},
    "state": {"backend": "gcs", "bucket": "demo-tfstate"},
}), Path(sys.argv[1]) / "gcp-full")
render_environment(parse_config(gcp), Path(sys.argv[1]) / "gcp-minimal")
onprem = {"name": "demo", "target": "onprem"}
render_environment(parse_config(onprem), Path(sys.argv[1]) / "onprem-nfs-server")
render_environment(parse_config({**onprem, "onprem": {"storage_class": "cephfs", "context": "lab"}}),
                   Path(sys.argv[1]) / "onprem-existing-class")
render_environment(parse_config({
    **onprem, "onprem": {"nfs_server": "10.0.0.5", "nfs_path": "/srv/bioinfra"},
    "node_pools": {"gpu": {"machine_type": "gpu-node", "gpu": {"count": 1}}},
}), Path(sys.argv[1]) / "onprem-nfs-subdir")
EOF

# BC_SKIP_MAPPING and --skip-download: no calls to the vendor's platform (offline, not needed);
# LOG_LEVEL=ERROR hides its parser's warnings about for_each resources.
BC_SKIP_MAPPING=TRUE LOG_LEVEL=${LOG_LEVEL:-ERROR} "$VENV/bin/checkov" -d "$work" --framework terraform --download-external-modules false \
  --skip-download --quiet --compact "$@" | tee "$work/report.txt"
if grep -Eq 'Parsing errors: [1-9]|"parsing_errors": [1-9]' "$work/report.txt"; then
  echo "checkov: some files could not be parsed (see above)" >&2
  exit 1
fi
