#!/usr/bin/env bash
# demo.sh: cctvd's main job on one machine. Two simulated IP cameras (RTSP,
# digest auth) and a local S3 (MinIO) on 127.0.0.1; cctvd records both
# cameras in short segments into ./demo-data/recordings and uploads them to
# the bucket "cctv-demo". Runs until Ctrl-C (or for DEMO_SECONDS seconds).
# `make demo` installs what is missing and builds bin/cctvd first.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
# shellcheck source=scripts/tools.env
. scripts/tools.env

data="$root/demo-data"
mkdir -p "$data"
cam_password='demo:p@ss/#%'            # percent-encoded by cctvd in the URL
s3_user=cctvd-demo
s3_secret="$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
bucket=cctv-demo

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# 1. The cameras: GStreamer's RTSP server, one test pattern per mount.
setsid /usr/bin/python3 scripts/testcam.py --mount /cam1=1920x1080@25 --mount /cam2=1280x720@25 \
  --user admin --password "$cam_password" --auth digest >"$data/testcam.out" 2>"$data/testcam.log" &
cam_pid=$!
pids+=($cam_pid)
# The camera builds its pipelines before it listens: one it cannot build
# (an element not installed) makes it exit at once with the element's name.
for _ in $(seq 100); do
  grep -q READY "$data/testcam.out" 2>/dev/null && break
  kill -0 "$cam_pid" 2>/dev/null || break
  sleep 0.1
done
cam_port="$(sed -n 's/^READY port=//p' "$data/testcam.out")"
[[ -n "$cam_port" ]] || { echo "demo: the test camera did not start:"; cat "$data/testcam.log"; exit 1; }

# 2. The local S3: MinIO with its own data folder, and the bucket.
s3_port="$(free_port)"
endpoint="http://127.0.0.1:$s3_port"
MINIO_ROOT_USER="$s3_user" MINIO_ROOT_PASSWORD="$s3_secret" MINIO_BROWSER=off MINIO_UPDATE=off \
  setsid "$MINIO" server --quiet --address "127.0.0.1:$s3_port" "$data/minio" >"$data/minio.log" 2>&1 &
pids+=($!)
for _ in $(seq 300); do curl -fsS "$endpoint/minio/health/ready" >/dev/null 2>&1 && break; sleep 0.1; done
s3curl() { curl -fsS --aws-sigv4 "aws:amz:us-east-1:s3" --user "$s3_user:$s3_secret" "$@"; }
s3curl -X PUT "$endpoint/$bucket" >/dev/null 2>&1 || true # exists after an earlier demo

# 3. cctvd's config: the design note's two cameras, with short segments.
api_port="$(free_port)"
cat >"$data/config.json" <<EOF
{
  "cameras": [
    {"cameraName": "camera1", "ipAddress": "127.0.0.1", "userName": "admin", "password": "$cam_password",
     "frameRate": 2, "resolution": "1920x1080", "videoDuration": 20, "videoFeedId": "xx",
     "rtspPort": $cam_port, "rtspPath": "/cam1"},
    {"cameraName": "camera2", "ipAddress": "127.0.0.1", "userName": "admin", "password": "$cam_password",
     "frameRate": 5, "resolution": "1280x720", "videoDuration": 10, "videoFeedId": "xx",
     "rtspPort": $cam_port, "rtspPath": "/cam2"}
  ],
  "s3Config": {"s3Bucket": "$bucket", "s3Path": "recordings/demo", "endpoint": "$endpoint"},
  "awsCredentials": {"accessKeyId": "$s3_user", "secretAccessKey": "$s3_secret", "region": "us-east-1"},
  "storageConfig": {"savePath": "$data/recordings", "clearAfterUpload": false, "clearWhenFilePathReachGB": 1},
  "api": {"listen": "127.0.0.1:$api_port"},
  "log": {"format": "console"}
}
EOF
chmod 600 "$data/config.json"

cat <<EOF

  cctvd demo
  ----------
  cameras   rtsp://127.0.0.1:$cam_port/cam1 (1080p) and /cam2 (720p), digest auth
  segments  $data/recordings/<camera>/<YYYY-MM-DD>/<camera>_xx_<start>_<end>.mp4
            (camera1: 20 s at 2 fps 1920x1080, camera2: 10 s at 5 fps 1280x720)
  S3        bucket $bucket at $endpoint, keys recordings/demo/<camera>/<day>/<file>
  page      http://127.0.0.1:$api_port/ (no token in the demo)
  API       http://127.0.0.1:$api_port/api/v1/cameras
  list S3   curl --aws-sigv4 aws:amz:us-east-1:s3 --user '$s3_user:$s3_secret' \\
              '$endpoint/$bucket?list-type=2&prefix=recordings%2Fdemo%2F'
  stop      Ctrl-C (cctvd finalises the open segments, then everything stops)

EOF

if [[ "${DEMO_SECONDS:-0}" -gt 0 ]]; then
  timeout -s INT "$DEMO_SECONDS" bin/cctvd run --config "$data/config.json" || [[ $? -eq 124 ]]
else
  bin/cctvd run --config "$data/config.json" || true
fi

echo
echo "demo: local segments:"
find "$data/recordings" -name '*.mp4' -not -path '*/.*' | sort | sed "s|$data/||"
echo "demo: objects in s3://$bucket:"
s3curl "$endpoint/$bucket?list-type=2&prefix=recordings%2Fdemo%2F" | grep -o '<Key>[^<]*</Key>' | sed 's/<[^>]*>//g' || true
