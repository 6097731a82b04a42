#!/usr/bin/env bash
# Builds Trellis's container images without a container engine or a registry: each image is an
# OCI image layout (made with umoci) tarred into target/images/<name>.tar, named by the
# annotations containerd reads, so `ctr -n k8s.io images import target/images/<name>.tar` gives
# e.g. ghcr.io/trellis-tre/trellis-api:0.1.0. The Containerfiles beside this script build the same
# images with docker/podman/buildah.
#
#   images/build.sh [NAME...]     NAME: trellis-operator trellis-api trellis-cli trellis-datashield
#                                       trellis-workspace-jupyter trellis-probe pause (default: all)
# Environment:
#   TRELLIS_IMAGE_REGISTRY  registry prefix of the Trellis images (default ghcr.io/trellis-tre)
#   TRELLIS_IMAGES_DIR      where the archives go (default <repo>/target/images)
#   SOURCE_DATE_EPOCH       every timestamp in the images (default: the last commit's time)
#   TRELLIS_CACHE_DIR       the cache of slow, pinned parts (default ~/.cache/trellis)
#   TRELLIS_IMAGE_REVISION  the revision label (default: the commit, with -dirty for local changes)
#   TRELLIS_IMAGES_CARGO=0  use the release binaries already built instead of running cargo
#
# The same inputs give the same digests: layers are tarred in name order with one mtime and
# numeric owners, and `created` is SOURCE_DATE_EPOCH. Slow, pinned parts (the Debian base layer,
# the JupyterLab root file system, busybox, pause) are cached under TRELLIS_CACHE_DIR/images,
# keyed by their pins and by the code that makes them, published by rename, and carry a fixed
# time of their own (pinned_epoch), so they are the same blobs at every commit.
set -euo pipefail
# The cached parts are made inside $(...): a failure there must stop the build too.
shopt -s inherit_errexit
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
all=(trellis-operator trellis-api trellis-cli trellis-datashield trellis-workspace-jupyter trellis-probe pause)
registry=${TRELLIS_IMAGE_REGISTRY:-ghcr.io/trellis-tre}
registry=${registry%/}
out_dir=${TRELLIS_IMAGES_DIR:-$repo/target/images}
cache=${TRELLIS_CACHE_DIR:-$HOME/.cache/trellis}/images
source_url=https://github.com/trellis-tre/trellis
# The pause image: kubelet's sandbox image, compiled from Kubernetes' own source at the version the
# local cluster runs.
pause_module=k8s.io/kubernetes@v1.36.3
pause_version=3.10.2
# The Debian packages of the base of the Rust images: what their binaries link (glibc, libgcc_s),
# the CA certificates rustls-native-certs reads, the files that say which Debian it is (for image
# scanners), /etc/services and friends. No shell, no package manager.
base_packages=(base-files netbase libc6 libgcc-s1 gcc-12-base ca-certificates)

say() { echo "images: $*" >&2; }
die() { echo "images: $*" >&2; exit 1; }
# Every compiler run waits its turn on the machine's shared build lock (2 cores, several users).
build_locked() { flock /tmp/trellis-build.lock "$@"; }

names=("$@")
[ ${#names[@]} -gt 0 ] || names=("${all[@]}")
for name in "${names[@]}"; do
  [[ " ${all[*]} " == *" $name "* ]] || die "no image named '$name'; the images are: ${all[*]}"
done
# The Debian packages (umoci, busybox-static, mmdebstrap, ...) come from tests/system-packages.sh.
for tool in umoci jq tar gzip dpkg-deb apt-get flock sha256sum; do
  command -v "$tool" >/dev/null || die "$tool is missing; run (as root): tests/system-packages.sh images"
done
tar --version | grep -q 'GNU tar' || die "GNU tar is required (sorted, reproducible layers)"

version=$(cd "$repo" && cargo metadata --no-deps --locked --format-version 1 |
  jq -r '.packages[] | select(.name == "trellis-api") | .version')
[ -n "$version" ] || die "could not read the workspace version with cargo metadata"
revision=${TRELLIS_IMAGE_REVISION:-$(cd "$repo" && git rev-parse HEAD 2>/dev/null || echo unknown)}
# A build from uncommitted changes must not claim to be the commit.
if [ -z "${TRELLIS_IMAGE_REVISION:-}" ] && [ "$revision" != unknown ] &&
  [ -n "$(cd "$repo" && git status --porcelain -- . ':!target' 2>/dev/null)" ]; then
  revision=$revision-dirty
fi
: "${SOURCE_DATE_EPOCH:=$(cd "$repo" && git log -1 --format=%ct 2>/dev/null || echo 0)}"
export SOURCE_DATE_EPOCH
created=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)
export LC_ALL=C TZ=UTC
umask 022
mkdir -p "$out_dir" "$cache"
work=$(mktemp -d "${TMPDIR:-/tmp}/trellis-images.XXXXXX")
trap 'rm -rf "$work"' EXIT

# --- Reproducible layers --------------------------------------------------------------------------

# make_layer DIR OUT.tar: DIR's contents as a layer: sorted names, one mtime, every file root's
# (whoever builds), no atime/ctime, so the same files give the same bytes.
make_layer() {
  local dir=$1 layer=$2 entries
  mapfile -t entries < <(cd "$dir" && ls -A)
  tar --create --file "$layer" --directory "$dir" --sort=name --format=posix \
    --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
    --mtime="@$SOURCE_DATE_EPOCH" --owner=0 --group=0 --numeric-owner -- "${entries[@]}"
}

# The timestamp of the cached layers: fixed, not the commit's, so that a layer from the cache and
# one made afresh at any commit are the same bytes (and the same blob in every release). Files of
# Debian's packages that are older keep their time (Python's .pyc files check it); newer ones are
# clamped to it.
pinned_epoch=1767225600 # 2026-01-01T00:00:00Z

# cached NAME FUNCTION KEY-TEXT: the directory $cache/NAME-<key> made by FUNCTION (called with the
# directory to fill), where the key hashes KEY-TEXT and FUNCTION's own code. A complete one is
# reused; a new one is made beside it and renamed into place (one builder at a time per cache).
cached() {
  local name=$1 fn=$2 key_text=$3 key dir start
  # Called as $(cached ...): this subshell's timestamp is the layers' own.
  SOURCE_DATE_EPOCH=$pinned_epoch
  key=$( { printf '%s\n' "$key_text" "$pinned_epoch"; declare -f "$fn" make_layer; } | sha256sum | cut -c1-16)
  dir=$cache/$name-$key
  exec 8>"$cache/.lock"
  flock 8
  if [ ! -d "$dir" ]; then
    say "building $name into $dir (once; cached)"
    start=$(date +%s)
    rm -rf "$dir.partial"
    mkdir -p "$dir.partial"
    "$fn" "$dir.partial" >&2
    [ -s "$dir.partial/layer.tar" ] || die "$fn made no layer in $dir.partial"
    mv -T "$dir.partial" "$dir"
    say "built $name in $(( $(date +%s) - start ))s"
  fi
  exec 8>&-
  echo "$dir"
}

# Each Debian package at the version apt would install now: a security update gives a new key.
deb_pins() {
  local pkg ver
  for pkg in "$@"; do
    ver=$(apt-cache policy "$pkg" | awk '/Candidate:/ {print $2}')
    [ -n "$ver" ] && [ "$ver" != "(none)" ] || die "apt knows no version of $pkg; run: apt-get update"
    echo "$pkg=$ver"
  done
}

# fetch_debs DIR PKG=VER...: the .deb files, from the Debian mirror apt is configured with, kept in
# $cache/debs: a kept file is used again (offline) when its SHA256 is the one apt's lists give.
fetch_debs() {
  local dir=$1; shift
  local debs=$cache/debs sandbox=() uris uri file size hash missing=()
  mkdir -p "$dir" "$debs"
  # As root, apt would drop to _apt, which cannot write into a cache under /root.
  [ "$(id -u)" -ne 0 ] || sandbox=(-o APT::Sandbox::User=root)
  uris=$(apt-get download --print-uris "$@") || die "apt knows no $*; run: apt-get update"
  while read -r uri file size hash; do
    [ -f "$debs/$file" ] && [ "SHA256:$(sha256sum <"$debs/$file" | cut -d' ' -f1)" = "$hash" ] || missing+=("$file")
  done <<<"$uris"
  if [ ${#missing[@]} -gt 0 ]; then
    (cd "$debs" && apt-get download -qq "${sandbox[@]}" "$@") ||
      die "apt-get download $* failed (the Debian mirror unreachable? run: apt-get update)"
  fi
  while read -r uri file size hash; do
    [ "SHA256:$(sha256sum <"$debs/$file" | cut -d' ' -f1)" = "$hash" ] || die "$debs/$file is not the file apt's lists name"
    cp "$debs/$file" "$dir/"
  done <<<"$uris"
}

# The base of the Rust images, like distroless/cc: the packages' files (no maintainer scripts run,
# so what they would generate is written here), a non-root user 65532 "nonroot", /tmp, no shell.
base_layer() {
  local out=$1 root=$1/rootfs deb pkg pins
  pins=$(deb_pins "${base_packages[@]}")
  fetch_debs "$out/debs" $pins
  mkdir -p "$root"
  for deb in "$out"/debs/*.deb; do
    dpkg-deb --extract "$deb" "$root"
    # What image scanners read to know the packages (the distroless convention).
    pkg=$(dpkg-deb --field "$deb" Package)
    mkdir -p "$root/var/lib/dpkg/status.d"
    dpkg-deb --field "$deb" >"$root/var/lib/dpkg/status.d/$pkg"
  done
  # update-ca-certificates would build the bundle at install; it is every Mozilla certificate.
  mkdir -p "$root/etc/ssl/certs"
  cat "$root"/usr/share/ca-certificates/mozilla/*.crt >"$root/etc/ssl/certs/ca-certificates.crt"
  # Nothing in the image can run the package's shell script.
  rm -f "$root/usr/sbin/update-ca-certificates"
  rm -rf "$root/usr/share/man" "$root/usr/share/lintian" "$root/usr/share/info"
  find "$root/usr/share/doc" -type f ! -name copyright -delete
  cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
EOF
  cat >"$root/etc/group" <<'EOF'
root:x:0:
nogroup:x:65534:
nonroot:x:65532:
EOF
  # glibc without this file would ask DNS before /etc/hosts.
  printf 'passwd: files\ngroup: files\nshadow: files\nhosts: files dns\nnetworks: files\nprotocols: files\nservices: files\n' \
    >"$root/etc/nsswitch.conf"
  mkdir -p "$root/tmp" "$root/root" "$root/home"
  chmod 1777 "$root/tmp"
  chmod 0700 "$root/root"
  make_layer "$root" "$out/layer.tar"
  # The user's home directory is the user's own: appended with its owner.
  mkdir -m 0700 "$root/home/nonroot"
  tar --append --file "$out/layer.tar" --directory "$root" --format=posix --no-recursion \
    --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
    --mtime="@$SOURCE_DATE_EPOCH" --numeric-owner --owner=65532 --group=65532 home/nonroot
  rm -rf "$root" "$out/debs"
  echo "$pins" >"$out/packages"
}

# The probe for network tests: Debian's static busybox with its applets, user probe (1000).
probe_layer() {
  local out=$1 root=$1/rootfs applet pins
  pins=$(deb_pins busybox-static)
  fetch_debs "$out/debs" $pins
  mkdir -p "$root"
  dpkg-deb --extract "$out"/debs/busybox-static_*.deb "$root"
  rm -rf "$root/usr/share/man" "$root/usr/share/lintian"
  [ -x "$root/bin/busybox" ] || die "busybox-static has no /bin/busybox"
  # busybox is static, so the host can ask it for its applets.
  for applet in $("$root/bin/busybox" --list-full); do
    [ -e "$root/$applet" ] && continue
    mkdir -p "$root/$(dirname "$applet")"
    ln -s /bin/busybox "$root/$applet"
  done
  mkdir -p "$root/etc" "$root/tmp" "$root/root"
  chmod 1777 "$root/tmp"
  printf 'root:x:0:0:root:/root:/bin/sh\nprobe:x:1000:1000:probe:/tmp:/bin/sh\n' >"$root/etc/passwd"
  printf 'root:x:0:\nprobe:x:1000:\n' >"$root/etc/group"
  printf 'hosts: files dns\n' >"$root/etc/nsswitch.conf"
  make_layer "$root" "$out/layer.tar"
  rm -rf "$root" "$out/debs"
}

# The workspace image's root file system: Debian bookworm (minbase) with Python, tini and
# JupyterLab from the hash-pinned wheels of requirements.txt; see trellis-workspace-jupyter/.
jupyter_debian=(python3 python3-venv tini ca-certificates)
jupyter_layer() {
  local out=$1 dir=$here/trellis-workspace-jupyter
  command -v mmdebstrap >/dev/null || die "mmdebstrap is missing; run (as root): tests/system-packages.sh images"
  # The wheels are fetched here (PyPI only); the root file system installs them with no network.
  say "downloading the pinned wheels of $dir/requirements.txt from PyPI"
  python3 -m pip download --quiet --disable-pip-version-check --no-deps --require-hashes \
    --only-binary=:all: --python-version 3.11 --implementation cp --abi cp311 \
    --platform manylinux2014_x86_64 --platform manylinux_2_28_x86_64 --platform manylinux_2_34_x86_64 \
    --dest "$out/wheels" -r "$dir/requirements.txt" || die "pip download of the JupyterLab wheels failed"
  build_locked env TRELLIS_WHEELS="$out/wheels" mmdebstrap --quiet --mode=auto --variant=minbase \
    --include="$(IFS=,; echo "${jupyter_debian[*]}")" \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --customize-hook="\"$dir/customize.sh\" \"\$1\"" \
    bookworm "$out/layer.tar" \
    'deb http://deb.debian.org/debian bookworm main' \
    'deb http://deb.debian.org/debian bookworm-updates main' \
    'deb http://deb.debian.org/debian-security bookworm-security main'
  rm -rf "$out/wheels"
}

# The pause binary, compiled from Kubernetes' source (the Go module cache holds it) as upstream's
# Makefile does: static, size-optimised, stripped.
pause_layer() {
  local out=$1 root=$1/rootfs src
  command -v go >/dev/null || die "go is missing (it fetches Kubernetes' source for pause.c)"
  command -v gcc >/dev/null || die "gcc is missing; run (as root): tests/system-packages.sh images"
  # Outside any module (no go.mod here), from the module proxy or the module cache.
  src=$(cd "$out" && GOFLAGS= GOTOOLCHAIN=local go mod download -json "$pause_module" | jq -r .Dir)
  [ -f "$src/build/pause/linux/pause.c" ] || die "no build/pause/linux/pause.c in $pause_module ($src)"
  mkdir -p "$root"
  build_locked gcc -Os -Wall -Werror -static -DVERSION="v$pause_version" \
    -o "$root/pause" "$src/build/pause/linux/pause.c"
  strip "$root/pause"
  make_layer "$root" "$out/layer.tar"
  rm -rf "$root"
}

# --- Images ----------------------------------------------------------------------------------------

# image NAME REF LAYER... -- UMOCI-CONFIG-ARGS...: the OCI archive $out_dir/NAME.tar holding one
# image named REF (e.g. ghcr.io/trellis-tre/trellis-api:0.1.0) made of the layers.
image() {
  local name=$1 ref=$2; shift 2
  local layers=() layout=$work/$name tag layer
  while [ "$1" != -- ]; do layers+=("$1"); shift; done
  shift
  tag=${ref##*:}
  rm -rf "$layout"
  umoci init --layout "$layout"
  umoci new --image "$layout:$tag"
  for layer in "${layers[@]}"; do
    umoci raw add-layer --image "$layout:$tag" --history.created "$created" \
      --history.created_by "images/build.sh: $(basename "$(dirname "$layer")" | sed 's/-[0-9a-f]\{16\}$//')" "$layer"
  done
  umoci config --image "$layout:$tag" --no-history --created "$created" \
    --os linux --architecture amd64 \
    --config.label "org.opencontainers.image.created=$created" \
    --config.label "org.opencontainers.image.revision=$revision" "$@"
  umoci gc --layout "$layout"
  # containerd names an imported image by io.containerd.image.name, or by a full reference in
  # org.opencontainers.image.ref.name (a bare tag would be prefixed with import-<date>).
  jq --arg ref "$ref" '.manifests[0].annotations = {
      "io.containerd.image.name": $ref, "org.opencontainers.image.ref.name": $ref }' \
    "$layout/index.json" >"$layout/index.json.new"
  mv "$layout/index.json.new" "$layout/index.json"
  tar --create --file "$out_dir/$name.tar.partial" --directory "$layout" --sort=name --format=posix \
    --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
    --mtime="@$SOURCE_DATE_EPOCH" --owner=0 --group=0 --numeric-owner --mode=go+rX \
    oci-layout index.json blobs
  mv "$out_dir/$name.tar.partial" "$out_dir/$name.tar"
  rm -rf "$layout"
}

labels() { # TITLE DESCRIPTION VERSION LICENSES SOURCE
  printf -- '--config.label\norg.opencontainers.image.%s\n' \
    "title=$1" "description=$2" "version=$3" "licenses=$4" "source=$5"
}

rust_image() { # NAME BINARY DESCRIPTION
  local name=$1 binary=$2 description=$3 bin_layer=$work/$1-bin
  local target=${CARGO_TARGET_DIR:-$repo/target}/release/$binary
  [ -x "$target" ] || die "no release binary $target"
  mkdir -p "$bin_layer/rootfs/usr/local/bin"
  install -m 0755 "$target" "$bin_layer/rootfs/usr/local/bin/$binary"
  make_layer "$bin_layer/rootfs" "$bin_layer/layer.tar"
  local args
  mapfile -t args < <(labels "$name" "$description" "$version" Apache-2.0 "$source_url")
  image "$name" "$registry/$name:$version" "$base/layer.tar" "$bin_layer/layer.tar" -- \
    --config.user 65532:65532 --config.workingdir /home/nonroot \
    --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --config.env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    --config.entrypoint "/usr/local/bin/$binary" "${args[@]}"
}

start=$(date +%s)
rust=()
for name in "${names[@]}"; do
  case $name in trellis-operator | trellis-api | trellis-cli | trellis-datashield) rust+=(-p "$name") ;; esac
done
if [ ${#rust[@]} -gt 0 ]; then
  base=$(cached base base_layer "$(deb_pins "${base_packages[@]}")")
  if [ "${TRELLIS_IMAGES_CARGO:-1}" != 0 ]; then
    say "cargo build --release ${rust[*]}"
    (cd "$repo" && build_locked cargo build --release --locked "${rust[@]}")
  fi
fi
for name in "${names[@]}"; do
  say "building $name"
  case $name in
    trellis-operator) rust_image "$name" trellis-operator "Trellis operator: turns approved research projects into isolated Kubernetes namespaces and workspaces" ;;
    trellis-api) rust_image "$name" trellis-api "Trellis API: the web UI, the workspace gateway and the airlock" ;;
    trellis-cli) rust_image "$name" trellis "Trellis command-line client (the workspace's inputs init container)" ;;
    trellis-datashield) rust_image "$name" trellis-datashield "Trellis DataSHIELD server: a project's non-disclosive analysis (Opal's DataSHIELD protocol, dsBase's rules, no R)" ;;
    trellis-probe)
      layer=$(cached probe probe_layer "$(deb_pins busybox-static)")
      mapfile -t args < <(labels "$name" "Busybox for Trellis's network tests" "$version" GPL-2.0-only "$source_url")
      image "$name" "$registry/$name:$version" "$layer/layer.tar" -- \
        --config.user 1000:1000 --config.workingdir /tmp --config.env PATH=/usr/sbin:/usr/bin:/sbin:/bin \
        --config.cmd /bin/sh "${args[@]}"
      ;;
    trellis-workspace-jupyter)
      jdir=$here/trellis-workspace-jupyter
      layer=$(cached jupyter jupyter_layer "$(deb_pins "${jupyter_debian[@]}" libc6 libpython3.11-stdlib openssl)
$(mmdebstrap --version)
$(cat "$jdir/requirements.txt" "$jdir/customize.sh" "$jdir/start-notebook.py" "$jdir"/*.json)")
      jupyterlab=$(sed -n 's/^jupyterlab==\([^ ]*\).*/\1/p' "$jdir/requirements.txt")
      mapfile -t args < <(labels "$name" "JupyterLab $jupyterlab workspace for Trellis (Debian bookworm, Python 3.11)" \
        "$version" "Apache-2.0 AND BSD-3-Clause" "$source_url")
      image "$name" "$registry/$name:$version" "$layer/layer.tar" -- \
        --config.user 1000:100 --config.workingdir /home/workspace \
        --config.env PATH=/opt/jupyter/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        --config.env HOME=/home/workspace --config.env SHELL=/bin/bash --config.env LANG=C.UTF-8 \
        --config.exposedports 8888/tcp \
        --config.entrypoint /usr/bin/tini --config.entrypoint -- --config.entrypoint /usr/local/bin/start-notebook.py \
        --config.label "dev.trellis.jupyterlab.version=$jupyterlab" "${args[@]}"
      ;;
    pause)
      layer=$(cached pause pause_layer "$pause_module $pause_version $(gcc --version | head -1) $(dpkg-query -W -f='${Version}' libc6-dev 2>/dev/null)")
      mapfile -t args < <(labels pause "The Kubernetes pod sandbox (build/pause of $pause_module)" \
        "$pause_version" Apache-2.0 https://github.com/kubernetes/kubernetes)
      image "$name" "registry.k8s.io/pause:$pause_version" "$layer/layer.tar" -- \
        --config.user 65535:65535 --config.entrypoint /pause "${args[@]}"
      ;;
  esac
done

# What was built: the name containerd will give it, the manifest digest, and its sizes.
printf '%-30s %-56s %-73s %10s %10s\n' ARCHIVE NAME DIGEST COMPRESSED UNPACKED
for name in "${names[@]}"; do
  archive=$out_dir/$name.tar
  tar -xOf "$archive" index.json >"$work/index.json"
  ref=$(jq -r '.manifests[0].annotations["io.containerd.image.name"]' "$work/index.json")
  digest=$(jq -r '.manifests[0].digest' "$work/index.json")
  manifest=$(tar -xOf "$archive" "blobs/sha256/${digest#sha256:}")
  compressed=$(jq '[.layers[].size] | add' <<<"$manifest")
  unpacked=0
  for layer in $(jq -r '.layers[].digest | ltrimstr("sha256:")' <<<"$manifest"); do
    unpacked=$(( unpacked + $(tar -xOf "$archive" "blobs/sha256/$layer" | gzip -dc | wc -c) ))
  done
  printf '%-30s %-56s %-73s %9sM %9sM\n' "$name.tar" "$ref" "$digest" \
    "$(( (compressed + 524288) / 1048576 ))" "$(( (unpacked + 524288) / 1048576 ))"
done
say "done in $(( $(date +%s) - start ))s; import with: ctr -n k8s.io images import $out_dir/<name>.tar"
