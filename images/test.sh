#!/usr/bin/env bash
# Tests the images of images/build.sh: builds them (reusing the caches), checks each archive is a
# valid OCI image layout whose blobs match their digests, named as containerd will import it, with
# the expected configuration (non-root user, entry point, labels with the version); builds again
# and checks the digests are the same (a second time from scratch for the quick layers); then runs
# each image with runc as its own user: the Rust binaries answer --version/--help with no shell in
# the image, busybox says who it runs as, pause starts, and JupyterLab serves under a base URL
# with a read-only root, offline (the container has only a loopback interface).
#   images/test.sh        (root: runc needs it here; every image is built if missing)
set -euo pipefail
shopt -s inherit_errexit
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
images=(trellis-operator trellis-api trellis-cli trellis-datashield trellis-workspace-jupyter trellis-probe pause)
registry=${TRELLIS_IMAGE_REGISTRY:-ghcr.io/trellis-tre}
out=${TRELLIS_IMAGES_DIR:-$repo/target/images}
failures=0
say() { echo "images-test: $*" >&2; }
die() { echo "images-test: FAIL: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "runs as root (runc starts the images' containers); run: sudo $0"
for tool in umoci runc jq tar sha256sum; do
  command -v "$tool" >/dev/null || die "$tool is missing; run (as root): tests/system-packages.sh images"
done
version=$(cd "$repo" && cargo metadata --no-deps --locked --format-version 1 |
  jq -r '.packages[] | select(.name == "trellis-api") | .version')
work=$(mktemp -d "${TMPDIR:-/tmp}/trellis-images-test.XXXXXX")
containers=()
containerd_pid=
cleanup() {
  local id mount
  for id in "${containers[@]}"; do runc delete --force "$id" >/dev/null 2>&1 || true; done
  if [ -n "$containerd_pid" ]; then kill "$containerd_pid" 2>/dev/null && wait "$containerd_pid" 2>/dev/null || true; fi
  # Nothing of ours may stay mounted (containerd's snapshots, runc's root file systems).
  for mount in $(awk -v w="$work" 'index($2, w) == 1 {print $2}' /proc/mounts | sort -r); do umount -l "$mount" || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# digests DIR: "name digest" for every image archive in DIR.
digests() {
  local name
  for name in "${images[@]}"; do
    echo "$name $(tar -xOf "$1/$name.tar" index.json | jq -r '.manifests[0].digest')"
  done
}

# One timestamp and revision for every build here: commits made meanwhile (the repository is
# shared) must not look like a build that is not reproducible.
SOURCE_DATE_EPOCH=$(cd "$repo" && git log -1 --format=%ct)
TRELLIS_IMAGE_REVISION=$(cd "$repo" && git rev-parse HEAD)
[ -z "$(cd "$repo" && git status --porcelain -- . ':!target')" ] || TRELLIS_IMAGE_REVISION+=-dirty
export SOURCE_DATE_EPOCH TRELLIS_IMAGE_REVISION
say "building the images"
"$here/build.sh" "${images[@]}"
digests "$out" >"$work/first"

# --- Reproducible --------------------------------------------------------------------------------
say "building them again: the digests must not change"
# The same release binaries (cargo's own reproducibility is not what is tested here).
TRELLIS_IMAGES_CARGO=0 TRELLIS_IMAGES_DIR=$work/second "$here/build.sh" "${images[@]}" >/dev/null
digests "$work/second" >"$work/second.digests"
if ! diff -u "$work/first" "$work/second.digests"; then
  die "a second build gave other digests (above)"
fi
# The quick cached layers (the Debian base, busybox, pause) are rebuilt from nothing too; the
# JupyterLab root file system (minutes) is the cached one.
say "building the Rust, probe and pause images once more with an empty cache"
# (Only the downloaded Debian packages are kept: inputs, checked against apt's lists again.)
cache=${TRELLIS_CACHE_DIR:-$HOME/.cache/trellis}/images
mkdir -p "$work/cache/images/debs"
debs=()
[ ! -d "$cache/debs" ] || mapfile -t debs < <(find "$cache/debs" -maxdepth 1 -name '*.deb')
[ ${#debs[@]} -eq 0 ] || cp "${debs[@]}" "$work/cache/images/debs/"
TRELLIS_IMAGES_CARGO=0 TRELLIS_CACHE_DIR=$work/cache TRELLIS_IMAGES_DIR=$work/third \
  "$here/build.sh" trellis-operator trellis-api trellis-cli trellis-datashield trellis-probe pause >/dev/null
for name in trellis-operator trellis-api trellis-cli trellis-datashield trellis-probe pause; do
  a=$(grep "^$name " "$work/first")
  b="$name $(tar -xOf "$work/third/$name.tar" index.json | jq -r '.manifests[0].digest')"
  [ "$a" = "$b" ] || die "$name: built from an empty cache it is ${b#* }, not ${a#* }"
done
rm -rf "$work/second" "$work/third" "$work/cache"
say "ok: the same inputs give the same digests"

# --- The layout and the configuration ------------------------------------------------------------

# layout NAME REF: unpacks the archive into $work/NAME, checks it and prints the config as JSON.
layout() {
  local name=$1 ref=$2 dir=$work/$1 digest manifest config blob
  mkdir -p "$dir"
  tar -xf "$out/$name.tar" -C "$dir"
  [ "$(jq -r .imageLayoutVersion "$dir/oci-layout")" = 1.0.0 ] || die "$name: oci-layout is not version 1.0.0"
  [ "$(jq '.manifests | length' "$dir/index.json")" = 1 ] || die "$name: the index must hold one image"
  for key in io.containerd.image.name org.opencontainers.image.ref.name; do
    [ "$(jq -r ".manifests[0].annotations[\"$key\"]" "$dir/index.json")" = "$ref" ] ||
      die "$name: index annotation $key is not $ref (containerd would name it otherwise)"
  done
  # Every blob is what its name says.
  for blob in "$dir"/blobs/sha256/*; do
    [ "$(sha256sum <"$blob" | cut -d' ' -f1)" = "$(basename "$blob")" ] || die "$name: blob $(basename "$blob") does not match its digest"
  done
  digest=$(jq -r '.manifests[0].digest' "$dir/index.json")
  manifest=$dir/blobs/sha256/${digest#sha256:}
  # (umoci leaves the optional mediaType out of the manifest itself; the index names it.)
  [ "$(jq -r '.manifests[0].mediaType' "$dir/index.json")" = application/vnd.oci.image.manifest.v1+json ] &&
    [ "$(jq -r '.schemaVersion, (.mediaType // "application/vnd.oci.image.manifest.v1+json"), .config.mediaType' "$manifest" | tr '\n' ' ')" = \
      "2 application/vnd.oci.image.manifest.v1+json application/vnd.oci.image.config.v1+json " ] ||
    die "$name: not an OCI image manifest with an OCI image config"
  [ "$(jq -r '[.layers[].mediaType] | unique | join(" ")' "$manifest")" = application/vnd.oci.image.layer.v1.tar+gzip ] ||
    die "$name: its layers are not all gzipped OCI layers"
  for blob in $(jq -r '.layers[].digest, .config.digest' "$manifest"); do
    [ -f "$dir/blobs/sha256/${blob#sha256:}" ] || die "$name: the manifest names a missing blob $blob"
  done
  config=$dir/blobs/sha256/$(jq -r '.config.digest | ltrimstr("sha256:")' "$manifest")
  [ "$(jq '.rootfs.diff_ids | length' "$config")" = "$(jq '.layers | length' "$manifest")" ] || die "$name: diff_ids and layers differ in number"
  cat "$config"
}

# expect NAME JQ-EXPRESSION EXPECTED: one field of NAME's image config.
expect() {
  local got
  got=$(jq -c "$2" "$work/$1.config")
  [ "$got" = "$3" ] || { say "FAIL: $1: $2 is $got, expected $3"; failures=$((failures + 1)); return; }
}

for name in "${images[@]}"; do
  case $name in pause) ref=registry.k8s.io/pause:3.10.2 ;; *) ref=$registry/$name:$version ;; esac
  layout "$name" "$ref" >"$work/$name.config"
  expect "$name" '[.os, .architecture]' '["linux","amd64"]'
  for label in title description version licenses source revision created; do
    expect "$name" ".config.Labels[\"org.opencontainers.image.$label\"] | type" '"string"'
  done
  # Kubernetes' runAsNonRoot needs a numeric, non-zero user in the image.
  expect "$name" '.config.User | test("^[1-9][0-9]*:[0-9]+$")' true
done
for name in trellis-operator trellis-api trellis-cli trellis-datashield; do
  binary=$name
  [ "$name" = trellis-cli ] && binary=trellis
  expect "$name" .config.User '"65532:65532"'
  expect "$name" .config.Entrypoint "[\"/usr/local/bin/$binary\"]"
  expect "$name" .config.Cmd null
  expect "$name" '.config.Labels["org.opencontainers.image.version"]' "\"$version\""
  expect "$name" '.config.Labels["org.opencontainers.image.licenses"]' '"Apache-2.0"'
  expect "$name" '.config.Labels["org.opencontainers.image.title"]' "\"$name\""
done
expect trellis-workspace-jupyter .config.User '"1000:100"'
expect trellis-workspace-jupyter .config.Entrypoint '["/usr/bin/tini","--","/usr/local/bin/start-notebook.py"]'
expect trellis-workspace-jupyter '.config.Labels["dev.trellis.jupyterlab.version"]' \
  "\"$(sed -n 's/^version=//p' "$repo/tests/workspace/setup-jupyterlab.sh")\""
expect trellis-probe .config.User '"1000:1000"'
expect pause .config.User '"65535:65535"'
expect pause .config.Entrypoint '["/pause"]'
expect pause '.config.Labels["org.opencontainers.image.version"]' '"3.10.2"'

# --- Running them ---------------------------------------------------------------------------------

# bundle NAME: a runc bundle $work/NAME.bundle from the image, as a restricted pod would run it:
# the image's user, entry point and environment (umoci turns the image config into the runtime
# config as containerd does), a read-only root, no capabilities, no new privileges, a writable
# /tmp, and a network namespace with only loopback.
bundle() {
  local name=$1 b=$work/$1.bundle
  umoci unpack --image "$work/$name:$(jq -r '.manifests[0].annotations["org.opencontainers.image.ref.name"]' "$work/$name/index.json")" "$b" >/dev/null
  jq '.process.terminal = false | .root.readonly = true | .process.noNewPrivileges = true
      | .process.capabilities = {bounding: [], effective: [], inheritable: [], permitted: [], ambient: []}
      | .mounts += [{destination: "/tmp", type: "tmpfs", source: "tmpfs", options: ["nosuid", "nodev", "mode=1777"]}]' \
    "$b/config.json" >"$b/config.json.new"
  mv "$b/config.json.new" "$b/config.json"
}

# run NAME ARGS...: runs ARGS in NAME's bundle (ARGS empty: the image's own command); prints the
# output, fails with the container's exit code.
run() {
  local name=$1 b=$work/$1.bundle id
  shift
  id=trellis-images-test-$name-$RANDOM
  if [ $# -gt 0 ]; then
    # (Not jq --args: jq would take an argument like --version as its own option.)
    jq --argjson args "$(printf '%s\n' "$@" | jq -R . | jq -s .)" '.process.args = $args' \
      "$b/config.json" >"$b/config.json.new"
    mv "$b/config.json.new" "$b/config.json"
  fi
  # In the foreground runc removes the container when it exits.
  timeout 60 runc run --bundle "$b" "$id" </dev/null
}

# with_probe NAME: busybox (from the probe image) mounted read-only at /probe in NAME's bundle, to
# look at the running container from inside; the image itself is not changed.
with_probe() {
  local b=$work/$1.bundle
  jq --arg src "$work/trellis-probe.bundle/rootfs/bin/busybox" \
    '.mounts += [{destination: "/probe/busybox", type: "bind", source: $src, options: ["rbind", "ro"]}]' \
    "$b/config.json" >"$b/config.json.new"
  mv "$b/config.json.new" "$b/config.json"
}

bundle trellis-probe
got=$(run trellis-probe id) || die "trellis-probe: id failed"
[ "$got" = "uid=1000(probe) gid=1000(probe)" ] || die "trellis-probe: runs as '$got', not probe (1000)"
say "ok: trellis-probe runs busybox as $got"

for name in trellis-operator trellis-api trellis-cli trellis-datashield; do
  binary=$name
  [ "$name" = trellis-cli ] && binary=trellis
  bundle "$name"
  rootfs=$work/$name.bundle/rootfs
  for shell in bin/sh bin/bash bin/dash usr/bin/sh bin/busybox; do
    [ ! -e "$rootfs/$shell" ] || die "$name: the image has a shell (/$shell)"
  done
  got=$(run "$name" "/usr/local/bin/$binary" --version) || die "$name: $binary --version failed (exit $?)"
  [ "$got" = "$binary $version" ] || die "$name: $binary --version says '$got', not '$binary $version'"
  say "ok: $name runs: $got"
  run "$name" "/usr/local/bin/$binary" --help >"$work/help" || die "$name: $binary --help failed"
  grep -q '^Usage: '"$binary" "$work/help" || die "$name: $binary --help prints no usage"
  # Found by name on PATH, as the operator's init container calls `trellis inputs sync`.
  run "$name" "$binary" --version >/dev/null || die "$name: '$binary' is not found on the image's PATH"
  if run "$name" /bin/sh -c true >/dev/null 2>&1; then die "$name: /bin/sh ran in an image with no shell"; fi
  with_probe "$name"
  got=$(run "$name" /probe/busybox id) || die "$name: could not look at the container's user"
  [ "$got" = "uid=65532(nonroot) gid=65532(nonroot)" ] || die "$name: runs as '$got', not nonroot (65532)"
  # TLS to the identity provider and S3 needs the CA bundle rustls-native-certs reads.
  certs=$(run "$name" /probe/busybox grep -c 'BEGIN CERTIFICATE' /etc/ssl/certs/ca-certificates.crt) || certs=0
  [ "$certs" -gt 100 ] || die "$name: /etc/ssl/certs/ca-certificates.crt has $certs certificates"
  say "ok: $name runs as $got with no shell and $certs CA certificates"
done

bundle pause
with_probe pause
# pause waits for a signal: start it detached, see it running as 65535, stop it.
id=trellis-images-test-pause-$RANDOM
containers+=("$id")
jq '.process.args = ["/pause"]' "$work/pause.bundle/config.json" >"$work/pause.json" && mv "$work/pause.json" "$work/pause.bundle/config.json"
runc run --detach --bundle "$work/pause.bundle" "$id" </dev/null >"$work/pause.log" 2>&1 || die "pause did not start: $(cat "$work/pause.log")"
sleep 1
[ "$(runc state "$id" | jq -r .status)" = running ] || die "pause is not running: $(cat "$work/pause.log")"
got=$(runc exec "$id" /probe/busybox id -u) || die "pause: could not look at the container's user"
[ "$got" = 65535 ] || die "pause runs as $got, not 65535"
runc kill "$id" TERM
for _ in $(seq 50); do [ "$(runc state "$id" 2>/dev/null | jq -r .status)" = stopped ] && break; sleep 0.1; done
[ "$(runc state "$id" | jq -r .status)" = stopped ] || die "pause did not stop on SIGTERM"
say "ok: pause runs as 65535 and stops on SIGTERM"

# JupyterLab as a WorkspaceTemplate runs it: the workspace user, a home volume (here a tmpfs owned
# by 1000:100), a read-only root, the gateway's base path, no token, no password.
name=trellis-workspace-jupyter
bundle "$name"
with_probe "$name"
base=/w/demo/ws-1/
jq --arg base "$base" '.mounts += [{destination: "/home/workspace", type: "tmpfs", source: "tmpfs",
      options: ["nosuid", "nodev", "mode=0755", "uid=1000", "gid=100"]}]
    | .process.args += ["--ServerApp.base_url=" + $base, "--port=8888", "--IdentityProvider.token=", "--ServerApp.password="]' \
  "$work/$name.bundle/config.json" >"$work/j.json" && mv "$work/j.json" "$work/$name.bundle/config.json"
id=trellis-images-test-jupyter-$RANDOM
containers+=("$id")
runc run --detach --bundle "$work/$name.bundle" "$id" </dev/null >"$work/jupyter.log" 2>&1 || die "JupyterLab did not start: $(cat "$work/jupyter.log")"
# The container has only loopback: ask from inside it, with the image's Python.
fetch() { runc exec "$id" /usr/bin/python3 -c 'import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())' "http://127.0.0.1:8888$base$1"; }
up=
for _ in $(seq 120); do
  if fetch api/status >"$work/status.json" 2>/dev/null; then up=1; break; fi
  [ "$(runc state "$id" | jq -r .status)" = running ] || break
  sleep 0.5
done
[ -n "$up" ] || die "JupyterLab did not answer at ${base}api/status within 60s; its log: $(cat "$work/jupyter.log")"
jupyterlab=$(sed -n 's/^version=//p' "$repo/tests/workspace/setup-jupyterlab.sh")
fetch lab >"$work/lab.html" || die "JupyterLab's ${base}lab page failed"
grep -q "\"appVersion\": \"$jupyterlab\"" "$work/lab.html" || die "the lab page is not JupyterLab $jupyterlab"
grep -q "\"baseUrl\": \"$base\"" "$work/lab.html" || die "the lab page does not use the base URL $base"
got=$(runc exec "$id" /probe/busybox id) || die "could not look at JupyterLab's user"
[ "$got" = "uid=1000(workspace) gid=100(users)" ] || die "JupyterLab runs as '$got', not workspace (1000:100)"
# Nothing from the internet: no news feed, no update check, no extension manager on PyPI.
fetch lab/api/news >"$work/news.json" || die "JupyterLab's news endpoint failed"
[ "$(jq -c .news "$work/news.json")" = '[]' ] || die "JupyterLab fetches news: $(cat "$work/news.json")"
fetch lab/api/update >"$work/update.json" || die "JupyterLab's update endpoint failed"
[ "$(jq -c .notification "$work/update.json")" = null ] || die "JupyterLab checks for updates: $(cat "$work/update.json")"
fetch lab/api/settings/@jupyterlab/apputils-extension:notification >"$work/notification.json" || die "JupyterLab's settings endpoint failed"
# (overrides.json changes the defaults, which the settings' schema carries.)
[ "$(jq -c '.schema.properties | [.fetchNews.default, .checkForUpdates.default]' "$work/notification.json")" = '["false",false]' ] ||
  die "JupyterLab's notification defaults would fetch news: $(jq -c '.schema.properties | {fetchNews, checkForUpdates}' "$work/notification.json")"
fetch api/kernelspecs >"$work/kernels.json" || die "JupyterLab lists no kernels"
[ "$(jq -r .default "$work/kernels.json")" = python3 ] || die "the default kernel is not python3: $(cat "$work/kernels.json")"
runc kill "$id" TERM
for _ in $(seq 100); do [ "$(runc state "$id" 2>/dev/null | jq -r .status)" = stopped ] && break; sleep 0.1; done
[ "$(runc state "$id" | jq -r .status)" = stopped ] || die "JupyterLab did not stop on SIGTERM (tini forwards it)"
say "ok: JupyterLab $jupyterlab serves under $base as $got, offline, and stops on SIGTERM"

# --- containerd, as the node will use them --------------------------------------------------------
# `ctr -n k8s.io images import` must name each image as the chart refers to it, and containerd must
# unpack and run it. A private containerd (the local cluster's build, its own root and socket).
"$repo/tests/cluster/build-tools.sh" containerd >&2 ||
  die "could not build the local cluster's containerd (tests/cluster/build-tools.sh containerd)"
bin=$repo/target/cluster/bin
for tool in containerd ctr containerd-shim-runc-v2; do
  [ -x "$bin/$tool" ] || die "no $bin/$tool after tests/cluster/build-tools.sh containerd"
done
c=$work/containerd
mkdir -p "$c"
# Only what importing and running needs: no CRI (the node's containerd has it).
cat >"$c/config.toml" <<EOF
version = 3
root = "$c/root"
state = "$c/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.cri.v1.runtime", "io.containerd.cri.v1.images", "io.containerd.podsandbox.controller.v1.podsandbox"]
[grpc]
  address = "$c/containerd.sock"
[ttrpc]
  address = "$c/containerd.sock.ttrpc"
EOF
PATH=$bin:$PATH "$bin/containerd" --config "$c/config.toml" >"$c/log" 2>&1 </dev/null &
containerd_pid=$!
ctr() { PATH=$bin:$PATH "$bin/ctr" --address "$c/containerd.sock" --namespace k8s.io "$@"; }
for _ in $(seq 100); do ctr version >/dev/null 2>&1 && break; sleep 0.1; done
ctr version >/dev/null || die "the private containerd did not start: $(tail -5 "$c/log")"
while read -r name digest; do
  ctr images import "$out/$name.tar" >/dev/null || die "ctr images import $out/$name.tar failed"
done <"$work/first"
ctr images ls | awk 'NR > 1 {print $1, $3}' | sort >"$work/imported"
while read -r name digest; do
  case $name in pause) ref=registry.k8s.io/pause:3.10.2 ;; *) ref=$registry/$name:$version ;; esac
  grep -qx "$ref $digest" "$work/imported" || die "containerd did not import $ref at $digest; it has: $(cat "$work/imported")"
done <"$work/first"
# (containerd warns on stderr that cgroup v1 is deprecated; only the output is compared.)
got=$(ctr run --rm "$registry/trellis-api:$version" images-test-api trellis-api --version 2>"$c/run.err") ||
  die "containerd could not run trellis-api: $(cat "$c/run.err")"
[ "$got" = "trellis-api $version" ] || die "trellis-api in containerd says '$got'"
got=$(ctr run --rm "$registry/trellis-probe:$version" images-test-probe id -u 2>"$c/run.err") ||
  die "containerd could not run the probe: $(cat "$c/run.err")"
[ "$got" = 1000 ] || die "the probe in containerd runs as $got, not 1000"
say "ok: containerd imports every archive under its chart name and digest, unpacks and runs them"

[ "$failures" -eq 0 ] || die "$failures configuration checks failed (above)"
say "all images pass: $(tr '\n' ' ' <"$work/first")"
