#!/usr/bin/env bash
# Regenerates every trace the shipped routes use (Routes/traces/), deterministically:
# the same seeds give byte-identical files, which a test checks for the uplink trace.
#   scripts/generate-route-traces.sh            # builds wayside (debug) if needed
set -euo pipefail
cd "$(dirname "$0")/.."
swift build --product wayside >/dev/null
W=.build/debug/wayside
# Cellular capacity (Mahimahi format) for Routes/cellular-backup.yaml: 120 s periods,
# 5 Mbit/s uplink and 20 Mbit/s downlink on average, with fades.
$W route cellular-trace --mean 5mbit  --duration 120s --seed 11 -o Routes/traces/cellular-uplink.mahi
$W route cellular-trace --mean 20mbit --duration 120s --seed 12 -o Routes/traces/cellular-downlink.mahi
# The soak drive as a GPS logger would record it, for Routes/long-drive-gpx.yaml.
$W route gpx Routes/long-drive.yaml --origin 48.1372,11.5756 --every 1s --noise 4 --seed 7 -o Routes/traces/long-drive.gpx
echo "traces written to Routes/traces/"
