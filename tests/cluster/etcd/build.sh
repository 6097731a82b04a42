#!/usr/bin/env bash
set -euo pipefail
out=${1:?usage: build.sh OUTPUT_DIR}
go build -trimpath -ldflags "-s -w" -o "${out}/etcd" go.etcd.io/etcd/server/v3
