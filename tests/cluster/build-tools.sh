#!/usr/bin/env bash
# Builds the pinned local-cluster tools (one Go module per tool, so their dependency versions never
# collide) into a cache keyed by the pins and the Go version, reuses a complete build, and links the
# binaries into target/cluster/bin. Usage: build-tools.sh [TOOL...]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=${TRELLIS_CACHE_DIR:-$HOME/.cache/trellis}/tools
bin=$repo/target/cluster/bin
export GOTOOLCHAIN=local GOFLAGS=-mod=readonly
mkdir -p "$cache" "$bin"
tools=("$@")
[ ${#tools[@]} -gt 0 ] || tools=(kubernetes etcd kwok helm dex)
# One builder at a time per cache (two checkouts may share it); a build is published by rename.
exec 9>"$cache/.lock"
flock 9
for tool in "${tools[@]}"; do
  dir=$here/$tool
  [ -f "$dir/build.sh" ] || { echo "build-tools: no tool named '$tool' in $here" >&2; exit 2; }
  # Patches a build applies to upstream's code, and a tool's own main package, are part of the key.
  key=$( (shopt -s nullglob; go version; cat "$dir/go.mod" "$dir/go.sum" "$dir/build.sh" "$dir"/*.patch "$dir"/*.go) | sha256sum | cut -c1-16)
  out=$cache/$tool-$key
  if [ ! -d "$out" ]; then
    echo "build-tools: building $tool into $out"
    start=$(date +%s)
    rm -rf "$out.partial"
    (cd "$dir" && ./build.sh "$out.partial")
    mv "$out.partial" "$out"
    echo "build-tools: built $tool in $(( $(date +%s) - start ))s"
  fi
  for binary in "$out"/*; do ln -sfn "$binary" "$bin/$(basename "$binary")"; done
done
