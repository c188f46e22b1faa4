#!/usr/bin/env bash
# deps.sh makes sure this machine can run cctvd's demo, tests and
# benchmarks. It checks capabilities, not package names: every GStreamer
# element the test camera's pipelines use, the ffmpeg encoders, muxers,
# demuxers and filters cctvd relies on, ffprobe, the tools of the power-cut
# drill, Chromium for the browser tests, the MQTT broker of the alerts'
# tests (mosquitto) and the checker of the Prometheus rules (promtool),
# MinIO. What is missing is installed
# from Debian's packages (or, for MinIO, built through the Go module proxy)
# and checked again; what still fails stops the script with one line that
# names it. Idempotent: on a ready machine it installs nothing.
#
#   scripts/deps.sh            check, install what is missing, check again
#   scripts/deps.sh --check    only check: one line per capability, ok or
#                              missing; exit 1 when one is missing
#   scripts/deps.sh --bench    also awscli, the baseline of `make bench`,
#                              and nft, the uplink bench's packet loss
#   scripts/deps.sh --mutate   also gremlins, the mutation tester of
#                              `make mutate` (built through the Go module proxy)
#   scripts/deps.sh --packages the Debian packages it may install, one a line
#
# The Debian packages it may install are listed in docs/development.md,
# so an offline installer can pre-seed them.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=scripts/tools.env
. "$here/tools.env"

check_only=false
bench=false
mutate=false
packages=false
for arg in "$@"; do
  case "$arg" in
    --check) check_only=true ;;
    --bench) bench=true ;;
    --mutate) mutate=true ;;
    --packages) packages=true; bench=true ;;
    *) echo "deps: unknown option $arg (use --check, --bench, --mutate, --packages)" >&2; exit 2 ;;
  esac
done

PY=/usr/bin/python3 # Debian's python, the one with the GStreamer bindings

# Each capability: "kind name package". kind says how it is checked; the
# package is the Debian package that provides it.
caps=(
  "bin ffmpeg ffmpeg"
  "bin ffprobe ffmpeg"
  "encoder libx264 ffmpeg"
  "muxer segment ffmpeg"
  "muxer mp4 ffmpeg"
  "muxer image2 ffmpeg"
  "encoder mjpeg ffmpeg"
  "muxer smjpeg ffmpeg"
  "demuxer concat ffmpeg"
  "demuxer rtsp ffmpeg"
  "filter fps ffmpeg"
  "filter scale ffmpeg"
  "filter split ffmpeg"
  "filter select ffmpeg"
  "bin python3 python3"
  "python gi python3-gi"
  "typelib Gst gir1.2-gstreamer-1.0"
  "typelib GstRtspServer gir1.2-gst-rtsp-server-1.0"
)
# The test camera names the elements of its pipelines itself, so this list
# cannot drift from scripts/testcam.py.
declare -A element_pkg=(
  [videotestsrc]=gstreamer1.0-plugins-base
  [videoconvert]=gstreamer1.0-plugins-base
  [compositor]=gstreamer1.0-plugins-base
  [videobalance]=gstreamer1.0-plugins-good
  [clockoverlay]=gstreamer1.0-x
  [valve]=libgstreamer1.0-0
  [capsfilter]=libgstreamer1.0-0
  [x264enc]=gstreamer1.0-plugins-ugly
  [rtph264pay]=gstreamer1.0-plugins-good
  [tee]=libgstreamer1.0-0
  [queue]=libgstreamer1.0-0
  [videoscale]=gstreamer1.0-plugins-base
  [intervideosrc]=gstreamer1.0-plugins-bad
  [intervideosink]=gstreamer1.0-plugins-bad
)
while read -r el; do
  [[ -n "$el" ]] && caps+=("element $el ${element_pkg[$el]:-unknown}")
done < <($PY "$here/testcam.py" --list-elements 2>/dev/null || printf '%s\n' "${!element_pkg[@]}")
caps+=(
  "bin curl curl"
  "bin mkfs.ext4 e2fsprogs"
  "bin e2fsck e2fsprogs"
  "bin losetup mount"
  "bin fsfreeze util-linux"
  "bin mount mount"
  "bin ip iproute2"
  "bin chromium chromium"
  "bin mosquitto mosquitto"
  "bin mosquitto_passwd mosquitto"
  "bin promtool prometheus"
  "minio minio go-module-proxy"
)
if $bench; then
  # awscli, the baseline; tc and nft shape the uplink bench's link (rate
  # and loss inside a network namespace the bench makes).
  caps+=("bin aws awscli" "bin tc iproute2" "bin nft nftables")
fi
if $mutate; then
  caps+=("gremlins gremlins go-module-proxy")
fi

if $packages; then
  for c in "${caps[@]}"; do
    read -r kind name pkg <<<"$c"
    [[ "$pkg" == unknown || "$pkg" == go-module-proxy ]] || echo "$pkg"
  done | sort -u
  exit 0
fi

have_bin() { command -v "$1" >/dev/null 2>&1 || [[ -x "/usr/sbin/$1" || -x "/sbin/$1" ]]; }

ffmpeg_has() { # ffmpeg_has <-encoders|-muxers|-demuxers|-filters> <name>
  have_bin ffmpeg || return 1
  ffmpeg -hide_banner "$1" 2>/dev/null | awk -v n="$2" '{ if ($2 == n) f = 1 } END { exit !f }'
}

check() { # check <kind> <name>
  case "$1" in
    bin) have_bin "$2" ;;
    encoder) ffmpeg_has -encoders "$2" ;;
    muxer) ffmpeg_has -muxers "$2" ;;
    demuxer) ffmpeg_has -demuxers "$2" ;;
    filter) ffmpeg_has -filters "$2" ;;
    python) [[ -x $PY ]] && $PY -c "import $2" 2>/dev/null ;;
    typelib) [[ -x $PY ]] && $PY -c "import gi; gi.require_version('$2', '1.0'); from gi.repository import $2" 2>/dev/null ;;
    element) [[ " $gst_found " == *" $2 "* ]] ;;
    minio) [[ -x "$MINIO" ]] && "$MINIO" --version >/dev/null 2>&1 ;;
    gremlins) [[ -x "$GREMLINS" ]] && go version -m "$GREMLINS" 2>/dev/null | grep -q "^[[:space:]]*mod[[:space:]]*github.com/go-gremlins/gremlins[[:space:]]*$GREMLINS_VERSION[[:space:]]" ;;
    *) return 1 ;;
  esac
}

# run_checks prints one line per capability and fills missing_caps and
# missing_pkgs.
run_checks() {
  missing_caps=()
  missing_pkgs=()
  local c kind name pkg
  # One GStreamer start for every element: the names of those it has.
  local elements=()
  for c in "${caps[@]}"; do
    read -r kind name pkg <<<"$c"
    [[ "$kind" == element ]] && elements+=("$name")
  done
  gst_found="$([[ -x $PY ]] && $PY -c "
import sys, gi
gi.require_version('Gst', '1.0')
from gi.repository import Gst
Gst.init(None)
print(' '.join(e for e in sys.argv[1:] if Gst.ElementFactory.find(e)))" "${elements[@]}" 2>/dev/null || true)"
  for c in "${caps[@]}"; do
    read -r kind name pkg <<<"$c"
    if check "$kind" "$name"; then
      if $check_only; then printf 'deps: ok       %-8s %-14s\n' "$kind" "$name"; fi
    else
      if [[ "$pkg" == go-module-proxy ]]; then
        printf 'deps: missing  %-8s %-14s (built from the Go module proxy)\n' "$kind" "$name"
      else
        printf 'deps: missing  %-8s %-14s (Debian package %s)\n' "$kind" "$name" "$pkg"
      fi
      missing_caps+=("$kind $name")
      [[ "$pkg" == unknown || "$pkg" == go-module-proxy ]] || missing_pkgs+=("$pkg")
    fi
  done
}

run_checks
if $check_only; then
  ((${#missing_caps[@]} == 0))
  exit
fi
if ((${#missing_caps[@]} == 0)); then
  echo "deps: every capability present (scripts/deps.sh --check lists them)" >&2
  exit 0
fi

if ((${#missing_pkgs[@]})); then
  mapfile -t missing_pkgs < <(printf '%s\n' "${missing_pkgs[@]}" | sort -u)
  echo "deps: installing ${missing_pkgs[*]}" >&2
  sudo=""
  if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing_pkgs[@]}" >/dev/null
fi

# MinIO, the S3 server of the demo and the tests, built from source through
# the Go module proxy (MinIO has no Debian package). The build takes a few
# minutes on 2 cores, so it is cached outside the repository.
if ! check minio minio; then
  echo "deps: building MinIO $MINIO_VERSION into $CCTVD_TOOLS (a few minutes, once)" >&2
  mkdir -p "$CCTVD_TOOLS/bin"
  GOBIN="$CCTVD_TOOLS/bin" GOFLAGS=-mod=mod go install "github.com/minio/minio@$MINIO_VERSION"
fi

# Gremlins, for `make mutate` only: built the same way, pinned, cached.
if $mutate && ! check gremlins gremlins; then
  echo "deps: building gremlins $GREMLINS_VERSION into $CCTVD_TOOLS" >&2
  mkdir -p "$CCTVD_TOOLS/bin"
  GOBIN="$CCTVD_TOOLS/bin" GOFLAGS=-mod=mod go install "github.com/go-gremlins/gremlins/cmd/gremlins@$GREMLINS_VERSION"
fi

run_checks >/dev/null
if ((${#missing_caps[@]})); then
  echo "deps: still missing after installing: ${missing_caps[*]}" >&2
  exit 1
fi
echo "deps: every capability present" >&2
