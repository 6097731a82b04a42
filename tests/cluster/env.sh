# Shared settings of the local control plane; sourced by up.sh and down.sh.
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
