# Shared settings of the local control plane (sourced by up.sh and down.sh) and of the test
# PostgreSQL (postgres-up.sh and postgres-down.sh).
# Every address is on loopback: nothing here may ever reach a private-range or public address.
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
state=${TRELLIS_CLUSTER_DIR:-$repo/target/cluster}
bin=$state/bin
pki=$state/pki
pids=$state/pids
logs=$state/logs
kubeconfig=$state/kubeconfig
etcd_port=${TRELLIS_ETCD_PORT:-23790}
etcd_peer_port=${TRELLIS_ETCD_PEER_PORT:-23800}
apiserver_port=${TRELLIS_APISERVER_PORT:-16443}
controller_manager_port=${TRELLIS_CONTROLLER_MANAGER_PORT:-10357}
scheduler_port=${TRELLIS_SCHEDULER_PORT:-10359}
kwok_port=${TRELLIS_KWOK_PORT:-10347}
# Pods and nodes get loopback addresses so that programs standing in for containers can bind to them.
pod_cidr=127.10.0.0/16
service_cidr=127.11.0.0/16
node_ips=(127.9.0.1 127.9.0.2)
# The components in start order; down.sh stops them in reverse.
components=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok)

# Prints the pid of a component this cluster started and that is still that program, or fails.
running_pid() {
  local file=$pids/$1.pid pid
  [ -f "$file" ] || return 1
  pid=$(cat "$file")
  [ -d "/proc/$pid" ] || return 1
  # Guard against a recycled pid: the process must still be the binary we started.
  [ "$(readlink -f "/proc/$pid/exe" 2>/dev/null)" = "$(readlink -f "$bin/$1")" ] || return 1
  echo "$pid"
}

# --- PostgreSQL for tests ------------------------------------------------------------------------
postgres_port=${TRELLIS_POSTGRES_PORT:-25432}
postgres_url=postgres://trellis@127.0.0.1:$postgres_port/postgres
# The newest PostgreSQL installed the Debian way (/usr/lib/postgresql/<major>/bin), unless set.
postgres_bin=${TRELLIS_POSTGRES_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)}
# PostgreSQL refuses to run as root: as root, the server runs as the `postgres` OS user.
postgres_user=$(if [ "$(id -u)" -eq 0 ]; then echo postgres; else id -un; fi)
as_postgres() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
# The server's state (data/, the socket directory run/, postgres.log), owned by $postgres_user.
# It lives in target/postgres, unless that user cannot reach it (as root, a checkout under a
# directory that `postgres` may not traverse), in which case /tmp/trellis-postgres-<uid>-<port>.
postgres_preferred_dir=${TRELLIS_POSTGRES_DIR:-$repo/target/postgres}
postgres_fallback_dir=/tmp/trellis-postgres-$(id -u)-$postgres_port
postgres_reachable() { # postgres_reachable DIR: can $postgres_user get to DIR (or create it)?
  local dir=$1
  while [ ! -e "$dir" ]; do dir=$(dirname "$dir"); done
  as_postgres test -x "$dir" 2>/dev/null
}
# Prints the pid of the server running from DIR (that is still alive, not a zombie, and still
# PostgreSQL), or fails. pg_ctl alone would count a killed server that is not yet reaped.
postgres_pid() { # postgres_pid DIR
  local pid
  pid=$(head -n 1 "$1/data/postmaster.pid" 2>/dev/null) || return 1
  [[ $pid =~ ^[0-9]+$ ]] && [ -d "/proc/$pid" ] || return 1
  [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ] || return 1
  [ "$(readlink -f "/proc/$pid/exe" 2>/dev/null)" = "$(readlink -f "$postgres_bin/postgres")" ] || return 1
  echo "$pid"
}
# Fails (naming the stranger) if DIR holds anything postgres-up.sh does not make, so that a wrong
# TRELLIS_POSTGRES_DIR is never wiped.
postgres_check_dir() { # postgres_check_dir DIR
  local entry
  for entry in $(shopt -s nullglob dotglob; cd "$1" 2>/dev/null && echo *); do
    case $entry in data|run|postgres.log|initdb.log) ;; *)
      echo "$1 holds $entry, which postgres-up.sh did not make; not removing it" >&2; return 1 ;;
    esac
  done
}
postgres_resolve_dir() { # sets postgres_dir; called by the PostgreSQL scripts only
  if postgres_reachable "$postgres_preferred_dir"; then
    postgres_dir=$postgres_preferred_dir
  else
    postgres_dir=$postgres_fallback_dir
  fi
}

# write_kubeconfig FILE USER CREDENTIALS: a kubeconfig for this cluster, where CREDENTIALS is the
# YAML of the user's credentials (indented by four spaces).
write_kubeconfig() {
  cat > "$1" <<YAML
apiVersion: v1
kind: Config
clusters:
- name: trellis-local
  cluster:
    server: https://127.0.0.1:$apiserver_port
    certificate-authority: $pki/ca.crt
users:
- name: $2
  user:
$3
contexts:
- name: trellis-local
  context: {cluster: trellis-local, user: $2}
current-context: trellis-local
YAML
}

# The credentials of a user with a client certificate from this cluster's PKI.
client_certificate() {
  printf '    client-certificate: %s\n    client-key: %s' "$pki/$1.crt" "$pki/$1.key"
}

# --- The real node (make cluster-up NODE=real) ------------------------------------------------
# A kubelet with containerd, runc and the CNI bridge beside the kwok nodes. Its pods live in
# network namespaces on the bridge below, which exists only on this machine; a firewall table of
# its own (the belt) drops every forwarded packet that would leave through any other interface.
real_node=realnode-1
node_state=$state/node
node_bridge=trellis0
node_ip=10.244.0.1
pod_subnet=10.244.0.0/24
# Service addresses when the real node runs: kube-proxy turns them into pod addresses; the rest of
# 10.244.0.0/16 is routed into the bridge, so an address nobody serves never leaves it either.
real_service_cidr=10.244.64.0/24
harness_cidr=10.244.0.0/16
# The cluster DNS Service (CoreDNS runs as a pod in kube-system, labelled as kube-dns is).
cluster_dns_ip=10.244.64.10
# Pods reach the API server through the `kubernetes` Service at the node address on the usual port
# (a relay to its loopback port), so NetworkPolicies written for real clusters apply unchanged.
node_apiserver_port=6443
# "The outside world" for tests: a network namespace of the harness's own, holding an address that
# stands for the internet and a link-local metadata address, reached only from pods (policy
# routing), never from the machine itself. TEST-NET-2, because the machine's package mirrors sit
# in TEST-NET-3 (203.0.113.0/24) and its own address in TEST-NET-1.
outside_netns=trellis-outside
outside_link=trellis-out0
outside_cidr=198.51.100.0/24
outside_ip=198.51.100.10
outside_gateway=198.51.100.1
metadata_ip=169.254.169.254
outside_table=7441
belt_table=trellis_belt
# The shims' sockets need a short path (containerd allows 42 characters).
shim_dir=/run/trellis-shim-$apiserver_port
# Whether the cluster in $state was started with the real node.
real_node_mode() { [ -f "$state/real-node" ]; }

# belt_check: fails unless the belt is in place and drops what it must.
belt_check() {
  local rules
  rules=$(nft list chain inet "$belt_table" forward 2>/dev/null) || { echo "the firewall belt (nft table inet $belt_table) is missing" >&2; return 1; }
  grep -Eq "oifname != \"trellis\\*\".* drop" <<<"$rules" || { echo "the firewall belt does not drop forwarded packets leaving through other interfaces:" >&2; echo "$rules" >&2; return 1; }
  # No address translation out of the harness: the only NAT allowed is kube-proxy's masquerade of
  # the service traffic it marks itself (hairpin), which never leaves through a real interface
  # because the belt's forward hook runs before postrouting.
  if iptables-save -t nat 2>/dev/null | grep -E -- '-j (MASQUERADE|SNAT)' | grep -v '^-A KUBE-POSTROUTING ' | grep -q .; then
    echo "an address-translation rule other than kube-proxy's own is installed:" >&2
    iptables-save -t nat | grep -E -- '-j (MASQUERADE|SNAT)' >&2; return 1
  fi
}
