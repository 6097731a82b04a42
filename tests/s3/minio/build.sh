#!/usr/bin/env bash
# Builds the pinned MinIO server (go.mod) into OUTPUT_DIR; called by ../build.sh.
set -euo pipefail
out=${1:?usage: build.sh OUTPUT_DIR}
go build -trimpath -ldflags "-s -w" -o "${out}/minio" github.com/minio/minio
