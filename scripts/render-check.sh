#!/bin/sh
# make render-check: render a report.html in headless Chromium (no network, no GPU, throw-away
# profile) and write a PNG screenshot next to it, for a person to look at. Optional: skipped with
# a note when chromium is not installed (Debian package `chromium`).
#   scripts/render-check.sh REPORT.html [SHOT.png]
set -eu
html="${1:?usage: render-check.sh REPORT.html [SHOT.png]}"
shot="${2:-${html%.html}.png}"
[ -f "$html" ] || { echo "render-check: '$html': no such file" >&2; exit 2; }
if grep -qi -e 'http' -e '<script' "$html"; then
	echo "render-check: '$html' is not self-contained (mentions http or <script)" >&2
	exit 1
fi
browser=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$browser" ]; then
	echo "render-check: chromium not installed (apt-get install chromium): skipped"
	exit 0
fi
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
case "$html" in /*) url="file://$html" ;; *) url="file://$(pwd)/$html" ;; esac
"$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
	--disable-background-networking --disable-component-update --disable-sync \
	--user-data-dir="$profile" --hide-scrollbars --window-size=1200,2400 \
	--screenshot="$shot" "$url" >/dev/null 2>&1
[ -s "$shot" ] || { echo "render-check: no screenshot written" >&2; exit 1; }
echo "render-check: $shot (look at it)"
