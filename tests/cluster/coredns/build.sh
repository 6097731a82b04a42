#!/usr/bin/env bash
# Builds the cluster DNS (main.go: CoreDNS with a cluster DNS's plugins only), static, so it runs in
# an image with no libc.
set -euo pipefail
out=${1:?usage: build.sh OUTPUT_DIR}
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$out/coredns" .
