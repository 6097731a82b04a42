#!/usr/bin/env bash
# Installs the Debian packages `make dev` or `make test` needs and a fresh machine lacks (it has
# only the toolchains), so that those two commands are the whole set-up. Nothing is installed
# when everything is present. Usage: tests/system-packages.sh dev|unit|test|images|node
set -euo pipefail
need=${1:?usage: tests/system-packages.sh dev|unit|test|images|node}
missing=()
packages=()
# What the local control plane and Dex need: the scripts' tools, and gcc for Dex's cgo (sqlite3).
for tool in openssl curl flock setsid runuser make patch gcc; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
[ ${#missing[@]} -eq 0 ] || packages+=(openssl curl util-linux make patch gcc libc6-dev)
# JupyterLab (tests/workspace/setup-jupyterlab.sh) goes into a virtual environment.
python3 -c 'import venv, ensurepip' 2>/dev/null || { missing+=(python3-venv); packages+=(python3-venv); }
if [ "$need" = test ]; then
  # The tests' own PostgreSQL server (tests/cluster/postgres-up.sh) runs Debian's binaries.
  compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null || { missing+=(postgresql); packages+=(postgresql); }
  # The airlock's malware scanning is tested against a real clamd.
  [ -x /usr/sbin/clamd ] || { missing+=(clamav-daemon); packages+=(clamav-daemon); }
  # The web UI's browser tests drive Debian's headless Chromium with playwright-core (npm).
  [ -x /usr/bin/chromium ] || { missing+=(chromium); packages+=(chromium chromium-driver fonts-dejavu-core); }
  command -v npm >/dev/null || { missing+=(npm); packages+=(nodejs npm); }
fi
if [ "$need" = test ] || [ "$need" = unit ]; then
  # DataSHIELD's tests take base R (and jsonlite, the encoder Opal's results come from) as the
  # oracle for every statistic and every result's encoding.
  Rscript -e 'library(jsonlite)' >/dev/null 2>&1 || { missing+=(r-base-core); packages+=(r-base-core r-cran-jsonlite); }
fi
if [ "$need" = test ] || [ "$need" = node ]; then
  # The real node (tests/cluster/node-up.sh): Debian's runc under containerd, nft for the belt,
  # iptables for kube-proxy, iptables and ipset for kube-router, socat for the API server relay.
  for tool in runc nft iptables ipset socat; do
    command -v "$tool" >/dev/null || { missing+=("$tool"); packages+=(runc nftables iptables ipset socat); break; }
  done
fi
if [ "$need" = test ] || [ "$need" = images ]; then
  # The container images (images/build.sh, images/test.sh): OCI layouts made with umoci, the
  # workspace image's Debian root file system with mmdebstrap, and runc to run them in the test.
  for tool in umoci mmdebstrap runc; do
    command -v "$tool" >/dev/null || { missing+=("$tool"); packages+=("$tool"); }
  done
fi
[ ${#missing[@]} -eq 0 ] && exit 0
echo "system-packages: installing Debian packages for: ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "system-packages: not root; run: sudo apt-get install ${packages[*]}" >&2
  exit 1
fi
# Debian's postgresql package would create and start a `main` cluster on port 5432; the tests
# start their own, so ask it not to.
mkdir -p /etc/postgresql-common/createcluster.d
echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.d/trellis.conf
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}" >/dev/null
