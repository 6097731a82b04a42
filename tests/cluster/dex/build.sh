#!/usr/bin/env bash
# Builds dex (the OpenID Connect provider for dev and tests) with its version stamped the way
# upstream's Makefile does (-X main.version).
#
# Dex's gRPC admin API (server/apiserver) needs the nested module github.com/dexidp/dex/api/v2 at
# the same commit, which the module proxy does not have (its v2.4.0 is too old for this server), so
# cmd/dex is built from a copy with no-grpc-api.patch applied: no gRPC API, and a configuration
# that sets grpc.addr is refused. The copy is built in a scratch module with this module's go.mod
# and go.sum, so every other package is upstream's code exactly as pinned.
set -euo pipefail
out=$(mkdir -p "${1:?usage: build.sh OUTPUT_DIR}" && cd "$1" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
version=$(go list -m -f '{{.Version}}' github.com/dexidp/dex)
go mod download github.com/dexidp/dex   # `go list -m` names the directory only once it is there
src=$(go list -m -f '{{.Dir}}' github.com/dexidp/dex)/cmd/dex
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$here/go.mod" "$here/go.sum" "$work/"
mkdir -p "$work/cmd/dex"
for f in "$src"/*.go; do case $f in *_test.go) ;; *) cp "$f" "$work/cmd/dex/" ;; esac; done
chmod -R u+w "$work/cmd/dex"
patch --quiet --no-backup-if-mismatch "$work/cmd/dex/serve.go" < "$here/no-grpc-api.patch"
# cgo stays on: dex's sqlite3 storage needs it.
(cd "$work" && CGO_ENABLED=1 go build -trimpath -ldflags "-s -w -X main.version=${version}" -o "${out}/dex" ./cmd/dex)
