#!/usr/bin/env bash
# Make a Docker daemon and a local base image available for the image tests (CI and developers).
#   - apt: docker.io, docker-registry (a registry for push tests), debootstrap (when missing)
#   - dockerd: started here when none answers (overlay2; vfs where overlay is unavailable)
#   - bioinfra-base:bookworm: `debootstrap --variant=minbase` + `docker import`, because Docker Hub
#     is unreachable here; Dockerfiles take it as BASE_IMAGE.
# Needs root. Idempotent: each part is skipped when already there.
set -euo pipefail
BASE_IMAGE=${BASE_IMAGE:-bioinfra-base:bookworm}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

missing=()
command -v docker >/dev/null 2>&1 && command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
command -v docker-registry >/dev/null 2>&1 || missing+=(docker-registry)
if ((${#missing[@]})); then
  echo "docker-up: installing ${missing[*]}" >&2
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
  # overlay2 is ~20x faster than vfs here (vfs copies the whole image for every container).
  driver=vfs
  grep -qw overlay /proc/filesystems && driver=overlay2
  echo "docker-up: starting dockerd (storage driver $driver)" >&2
  nohup dockerd --storage-driver="$driver" --iptables=false --bridge=none >/tmp/bioinfra-dockerd.log 2>&1 &
  for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { echo "docker-up: dockerd did not start; see /tmp/bioinfra-dockerd.log" >&2; exit 1; }
fi

if ! docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
  echo "docker-up: building $BASE_IMAGE with debootstrap (about a minute)" >&2
  root=$(mktemp -d /tmp/bioinfra-base.XXXXXX)
  debootstrap --variant=minbase bookworm "$root" "$MIRROR" >/tmp/bioinfra-debootstrap.log 2>&1
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/archives/*.deb
  tar -C "$root" -c . | docker import - "$BASE_IMAGE" >/dev/null
  rm -rf "$root"
fi
echo "docker-up: daemon ready, base image $BASE_IMAGE" >&2
