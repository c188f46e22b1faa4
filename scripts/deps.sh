#!/usr/bin/env bash
# deps.sh installs what cctvd's demo, tests and benchmarks need, when it is
# missing, from Debian's packages and the Go module proxy. Idempotent: a
# second run installs nothing.
#
#   scripts/deps.sh            ffmpeg, GStreamer's RTSP server (the test camera), MinIO
#   scripts/deps.sh --bench    also awscli, the baseline of `make bench`
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=scripts/tools.env
. "$here/tools.env"

pkgs=(ffmpeg python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base
      gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly gstreamer1.0-plugins-bad)
if [[ "${1:-}" == "--bench" ]]; then
  pkgs+=(awscli)
fi

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "deps: installing ${missing[*]}" >&2
  sudo=""
  if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# MinIO, the S3 server of the demo and the tests, built from source through
# the Go module proxy (MinIO has no Debian package). The build takes a few
# minutes on 2 cores, so it is cached outside the repository.
if [[ ! -x "$MINIO" ]]; then
  echo "deps: building MinIO $MINIO_VERSION into $CCTVD_TOOLS (a few minutes, once)" >&2
  mkdir -p "$CCTVD_TOOLS/bin"
  GOBIN="$CCTVD_TOOLS/bin" GOFLAGS=-mod=mod go install "github.com/minio/minio@$MINIO_VERSION"
fi
