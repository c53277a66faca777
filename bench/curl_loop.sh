#!/usr/bin/env bash
# The plain alternative, for scale: one job after another with curl.
# Usage: bench/curl_loop.sh BASE_URL JOBS OUT_DIR [POLL_SECONDS]   (key in API_KEY)
# Each job: create, poll until completed or failed, download through the content route.
set -euo pipefail
base=$1
jobs=$2
out=$3
poll=${4:-0.5}
auth="Authorization: Bearer ${API_KEY:?API_KEY is not set}"
mkdir -p "$out"
# The first value of a JSON string field, without a JSON tool: enough for these flat answers.
field() { grep -o "\"$1\": *\"[^\"]*\"" | head -n 1 | sed 's/.*"\([^"]*\)"$/\1/'; }
for ((i = 0; i < jobs; i++)); do
  body=$(printf '{"model":"omni-fast","prompt":"Ocean waves at golden hour, shot %d, cinematic","seconds":"8","aspect_ratio":"16:9","resolution":"720p"}' "$i")
  id=$(curl -sS --fail -H "$auth" -H 'Content-Type: application/json' -d "$body" "$base/videos" | field id)
  while :; do
    status=$(curl -sS --fail -H "$auth" "$base/videos/$id" | field status)
    case $status in
      completed) break ;;
      failed) echo "$id failed" >&2; continue 2 ;;
    esac
    sleep "$poll"
  done
  curl -sS --fail -H "$auth" -o "$out/$id.mp4" "$base/videos/$id/content"
done
