#!/usr/bin/env bash
# Builds MinIO, the S3-compatible server the airlock's S3 tests run against, from the Go module
# proxy at the version minio/go.mod pins, into a cache keyed by the pins and the Go version (as
# tests/cluster/build-tools.sh does for the cluster tools), and prints the binary's path on stdout
# (progress goes to stderr):  export TRELLIS_E2E_S3_SERVER=$(tests/s3/build.sh)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${TRELLIS_CACHE_DIR:-$HOME/.cache/trellis}/tools
export GOTOOLCHAIN=local GOFLAGS=-mod=readonly
dir=$here/minio
mkdir -p "$cache"
key=$( (go version; cat "$dir/go.mod" "$dir/go.sum" "$dir/build.sh") | sha256sum | cut -c1-16)
out=$cache/minio-$key
# One builder at a time per cache; a build is published by rename, so a cut-off build is redone.
exec 9>"$cache/.lock"
flock 9
if [ ! -x "$out/minio" ]; then
  echo "s3/build: building MinIO into $out" >&2
  start=$(date +%s)
  rm -rf "$out.partial"
  (cd "$dir" && ./build.sh "$out.partial") >&2
  mv "$out.partial" "$out"
  echo "s3/build: built MinIO in $(( $(date +%s) - start ))s" >&2
fi
echo "$out/minio"
