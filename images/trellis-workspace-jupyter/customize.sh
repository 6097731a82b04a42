#!/usr/bin/env bash
# mmdebstrap's customize hook for the trellis-workspace-jupyter root file system (see
# images/build.sh): installs the hash-pinned wheels (downloaded by the builder into
# $TRELLIS_WHEELS) into the virtual environment /opt/jupyter with no network, adds the workspace
# user (UID 1000, group users (100), as Trellis runs workspace pods) and the Jupyter settings.
#   customize.sh ROOTFS
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=${1:?usage: customize.sh ROOTFS}
wheels=${TRELLIS_WHEELS:?the builder sets TRELLIS_WHEELS to the downloaded wheels}
: "${SOURCE_DATE_EPOCH:?the builder sets SOURCE_DATE_EPOCH}"

# The workspace user; Trellis's pods run as 1000:100 with HOME=/home/workspace (a volume there).
grep -q '^users:x:100:' "$root/etc/group" || { echo "customize.sh: no group users (100) in the base" >&2; exit 1; }
echo 'workspace:x:1000:100:Trellis workspace:/home/workspace:/bin/bash' >>"$root/etc/passwd"
echo 'workspace:*:19000:0:99999:7:::' >>"$root/etc/shadow"
install -d -m 0755 -o 1000 -g 100 "$root/home/workspace"

# No network in here: pip installs exactly the downloaded wheels, each checked against its hash.
# With SOURCE_DATE_EPOCH set, Python compiles hash-checked .pyc files, valid whatever the mtimes.
mkdir -p "$root/tmp/trellis-wheels"
cp "$wheels"/*.whl "$here/requirements.txt" "$root/tmp/trellis-wheels/"
# A clean environment: the builder's (PIP_FIND_LINKS, PYTHONDONTWRITEBYTECODE, ...) is not the image's.
in_root() { env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 SOURCE_DATE_EPOCH="$SOURCE_DATE_EPOCH" chroot "$root" "$@"; }
in_root /usr/bin/python3 -m venv /opt/jupyter
in_root /opt/jupyter/bin/python -m pip install --quiet --no-index --no-cache-dir \
  --disable-pip-version-check --require-hashes --find-links /tmp/trellis-wheels \
  -r /tmp/trellis-wheels/requirements.txt
rm -rf "$root/tmp/trellis-wheels"

# Nothing may reach outside a TRE: no news, no update checks, no extension manager (PyPI).
install -D -m 0644 "$here/jupyter_server_config.json" "$root/opt/jupyter/etc/jupyter/jupyter_server_config.json"
install -D -m 0644 "$here/overrides.json" "$root/opt/jupyter/share/jupyter/lab/settings/overrides.json"
install -D -m 0755 "$here/start-notebook.py" "$root/usr/local/bin/start-notebook.py"

# What the build wrote carries one timestamp, so the same inputs give the same layer.
rm -rf "$root/root/.cache" "$root/var/cache/apt/"*.bin
# (/proc, /sys and /dev are mount points while the hook runs; mmdebstrap makes them itself.)
find "$root" -xdev \( -path "$root/proc" -o -path "$root/sys" -o -path "$root/dev" \) -prune -o \
  -newermt "@$SOURCE_DATE_EPOCH" -print0 |
  xargs -0r touch --no-dereference --date="@$SOURCE_DATE_EPOCH"
