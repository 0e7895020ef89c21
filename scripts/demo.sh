#!/bin/sh
# make demo: the main job on built-in defaults. Writes only under build/demo.
set -eu
bin="$1"
out="$(dirname "$bin")/demo"
rm -rf "$out"
mkdir -p "$out"
"$bin" mock "$out/mock" --gas 2000000 --halos 20 --files 8 --seed 1
"$bin" info --base-path "$out/mock" --snap 99
