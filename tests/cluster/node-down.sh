#!/usr/bin/env bash
# Removes the real node and puts the machine back as node-up.sh found it: pods deleted (so the CNI
# releases their links), the node's processes stopped, kube-proxy's rules removed, mounts under the
# node's directories unmounted, cgroups, links, routes and files the kubelet and CNI write outside
# their directories removed, kernel settings restored, and last the firewall ruleset restored to
# the recorded one (which removes the belt). Then it checks the result against the record and
# fails, naming the difference, if anything is left. Run by down.sh while the API server is up.
set -uo pipefail
source "$(dirname "$0")/env.sh"
say() { echo "node-down: $*" >&2; }
kubectl() { "$bin/kubectl" --kubeconfig "$kubeconfig" --request-timeout 10s "$@"; }
baseline=$node_state/baseline
[ -d "$baseline" ] || { say "no real node was started from $state"; rm -f "$state/real-node"; exit 0; }
problems=0
problem() { say "LEFT BEHIND: $*"; problems=$((problems + 1)); }

pid_of() { local f=$pids/$1.pid; [ -f "$f" ] && [ -d "/proc/$(cat "$f")" ] && cat "$f"; }
stop() { # stop NAME: SIGTERM, then SIGKILL after 10 s
  local pid
  pid=$(pid_of "$1") || { rm -f "$pids/$1.pid"; return 0; }
  kill -TERM "$pid" 2>/dev/null
  for _ in $(seq 1 100); do [ -d "/proc/$pid" ] || break; sleep 0.1; done
  [ -d "/proc/$pid" ] && { say "$1 ignored SIGTERM; killing it"; kill -KILL "$pid" 2>/dev/null; sleep 0.2; }
  rm -f "$pids/$1.pid"
}

# 1. While the kubelet still runs: delete every pod on the node so their sandboxes go through CNI DEL.
if pid_of kubelet >/dev/null && kubectl get node "$real_node" >/dev/null 2>&1; then
  stop local-path-provisioner
  kubectl delete pods --all-namespaces --field-selector "spec.nodeName=$real_node" --wait=false >/dev/null 2>&1
  for _ in $(seq 1 120); do
    [ -z "$(kubectl get pods --all-namespaces --field-selector "spec.nodeName=$real_node" -o name 2>/dev/null)" ] && break
    sleep 0.5
  done
fi
# 2. The node's processes, kube-proxy's rules, and whatever containers are left.
stop local-path-provisioner
stop kube-router
[ -x "$bin/kube-router" ] && "$bin/kube-router" --cleanup-config >/dev/null 2>&1
stop kube-proxy
[ -x "$bin/kube-proxy" ] && "$bin/kube-proxy" --cleanup >/dev/null 2>&1
stop kubelet
kubectl delete node "$real_node" --wait=false >/dev/null 2>&1
ctd=$node_state/containerd
if pid_of containerd >/dev/null; then
  ctr() { "$bin/ctr" -a "$ctd/containerd.sock" -n k8s.io "$@" 2>/dev/null; }
  for task in $(ctr tasks ls -q); do ctr tasks kill -s KILL "$task"; ctr tasks delete -f "$task"; done
  for c in $(ctr containers ls -q); do ctr containers rm "$c"; done
fi
stop containerd
stop apiserver-relay
# Shims outlive containerd by design; ours are the ones whose sockets are in $shim_dir.
for pid in $(pgrep -f containerd-shim-runc-v2 2>/dev/null); do
  grep -qa "$ctd" "/proc/$pid/cmdline" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
done
# Sandboxes' pause processes and containers whose shim was killed: anything still running from the
# node's runc root.
for state_dir in "$ctd"/runc/k8s.io/*; do
  [ -d "$state_dir" ] || continue
  runc --root "$ctd/runc/k8s.io" kill "$(basename "$state_dir")" KILL >/dev/null 2>&1
  runc --root "$ctd/runc/k8s.io" delete -f "$(basename "$state_dir")" >/dev/null 2>&1
done

# 3. Mounts under the node's directories (deepest first), pod network namespaces and links.
for _ in 1 2 3; do
  mounts=$(awk -v d="$node_state" -v r="$shim_dir" 'index($5, d) == 1 || index($5, r) == 1 {print $5}' /proc/self/mountinfo | sort -r)
  [ -z "$mounts" ] && break
  for m in $mounts; do umount -l "$m" 2>/dev/null; done
done
for link in $(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | sed 's/@.*//' | grep -E '^veth'); do
  [ "$(cat "/sys/class/net/$link/master/ifindex" 2>/dev/null)" = "$(cat "/sys/class/net/$node_bridge/ifindex" 2>/dev/null)" ] && ip link del "$link" 2>/dev/null
done
ip route del "$harness_cidr" dev "$node_bridge" 2>/dev/null
ip link del "$node_bridge" 2>/dev/null
# The outside world stand-in.
while ip rule del priority 7441 2>/dev/null; do :; done
ip route flush table "$outside_table" 2>/dev/null
for pid in $(ip netns pids "$outside_netns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
ip link del "$outside_link" 2>/dev/null
ip netns del "$outside_netns" 2>/dev/null

# 4. cgroups the kubelet and runc made (empty once nothing runs in them).
for hierarchy in /sys/fs/cgroup/*/; do
  for top in kubepods k8s.io; do
    [ -d "$hierarchy$top" ] && find "$hierarchy$top" -depth -type d -exec rmdir {} \; 2>/dev/null
  done
done

# 5. Paths the kubelet, go-cni and mount write whatever their settings say (see the recipe), when
#    they did not exist before.
for path in /var/lib/kubelet /var/log/containers /var/lib/cni /run/containerd /run/mount /var/log/pods; do
  grep -qx "$path" "$baseline/existing-paths" 2>/dev/null || rm -rf "$path"
done
rm -rf "$shim_dir"

# 6. Kernel settings, as recorded (ip_forward first: writing it resets every conf.*.forwarding).
if [ -f "$baseline/sysctl.conf" ]; then
  grep '^net.ipv4.ip_forward ' "$baseline/sysctl.conf" | sed 's/ = /=/' | xargs -r sysctl -q -w
  sed 's/ = /=/' "$baseline/sysctl.conf" | xargs -r sysctl -q -w 2>/dev/null
fi

# 7. The firewall as it was: restoring the recorded ruleset removes kube-proxy's and anything
#    else's tables and chains, and the belt (which goes last, once nothing can forward).
if [ -f "$baseline/ruleset.nft" ]; then
  { echo "flush ruleset"; cat "$baseline/ruleset.nft"; } | nft -f - || problem "the firewall ruleset could not be restored"
fi
command -v ipset >/dev/null && for set in $(ipset list -n 2>/dev/null); do
  grep -qx "$set" "$baseline/ipsets" 2>/dev/null || ipset destroy "$set" 2>/dev/null
done

# 8. Check: nothing of ours is left.
[ "$(nft list ruleset)" = "$(cat "$baseline/ruleset.nft")" ] || problem "the firewall ruleset differs from the one recorded before the node started"
ip link show "$node_bridge" >/dev/null 2>&1 && problem "the bridge $node_bridge"
ip -o link show | grep -q ' veth' && problem "veth links: $(ip -o link show | grep ' veth' | awk -F': ' '{print $2}' | tr '\n' ' ')"
awk -v d="$node_state" 'index($5, d) == 1' /proc/self/mountinfo | grep -q . && problem "mounts under $node_state"
for daemon in apiserver-relay containerd kubelet kube-proxy kube-router local-path-provisioner; do
  pid_of "$daemon" >/dev/null && problem "the $daemon process"
done
ip netns list | grep -q "^$outside_netns" && problem "the network namespace $outside_netns"
ip link show "$outside_link" >/dev/null 2>&1 && problem "the link $outside_link"
ip rule list | grep -q "lookup $outside_table" && problem "the routing rule to table $outside_table"
ipset list -n 2>/dev/null | grep -vxFf "$baseline/ipsets" 2>/dev/null | grep -q . && problem "ipsets: $(ipset list -n | tr '\n' ' ')"
pgrep -f "$ctd" >/dev/null && problem "processes started from $ctd: $(pgrep -af "$ctd" | head -3)"
if [ -f "$baseline/sysctl.conf" ]; then
  while read -r key _ value; do
    now=$(sysctl -n "$key" 2>/dev/null | tr '\t' ' ')
    [ "$now" = "$(tr '\t' ' ' <<<"$value")" ] || problem "kernel setting $key is '$now', was '$value'"
  done <"$baseline/sysctl.conf"
fi
for hierarchy in /sys/fs/cgroup/*/; do [ -d "${hierarchy}kubepods" ] && problem "cgroup ${hierarchy}kubepods"; done

if [ $problems -eq 0 ]; then
  rm -rf "$node_state" "$state/real-node"
  say "the real node is gone and the machine is as it was"
else
  say "$problems things could not be put back; the record is kept in $baseline"
  exit 1
fi
