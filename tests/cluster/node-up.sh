#!/usr/bin/env bash
# Network and host preparation for the real node, run by up.sh before the control plane starts
# (`node-up.sh network`) and the node itself once it is up (`node-up.sh node`):
#   network: record the host's state for node-down.sh, install the belt (an nft table dropping
#            every forwarded packet that would leave through an interface that is not the
#            harness's own), make the pod bridge with the node address, and route the rest of the
#            harness's range into it;
#   node:    containerd (Debian's runc), the CNI bridge, a kubelet joining the local control plane,
#            kube-proxy, kube-router (the NetworkPolicy enforcer), CoreDNS and the local-path
#            provisioner, and a relay that lets pods reach the API server (which listens on
#            loopback only) at the node address.
# Every process is recorded in $pids; node-down.sh undoes all of it. Facts behind the settings:
# ../shared/reference/real-node-recipe.md.
set -euo pipefail
source "$(dirname "$0")/env.sh"
say() { echo "node-up: $*" >&2; }
fail() { say "$*"; exit 1; }
kubectl() { "$bin/kubectl" --kubeconfig "$kubeconfig" "$@"; }
phase=${1:?usage: node-up.sh network|node}

case $phase in
network)
  [ "$(id -u)" -eq 0 ] || fail "the real node needs root (network namespaces, mounts, cgroups)"
  for tool in nft iptables-save ipset ip runc socat; do
    command -v "$tool" >/dev/null || fail "$tool is missing (tests/system-packages.sh node installs it)"
  done
  for controller in cpu cpuacct cpuset memory pids; do
    [ -d "/sys/fs/cgroup/$controller" ] || fail "the cgroup v1 $controller hierarchy is not mounted at /sys/fs/cgroup/$controller"
  done
  ! ip link show "$node_bridge" >/dev/null 2>&1 || fail "$node_bridge already exists: another real node is running, or one was not torn down (make cluster-down)"
  mkdir -p "$node_state/baseline"
  # What the host looked like, so node-down.sh can put it back and prove it did.
  baseline=$node_state/baseline
  nft list ruleset >"$baseline/ruleset.nft"
  if command -v ipset >/dev/null; then ipset list -n >"$baseline/ipsets"; fi
  for path in /var/lib/kubelet /var/log/containers /var/lib/cni /run/containerd /run/mount /var/log/pods; do
    [ -e "$path" ] && echo "$path"
  done >"$baseline/existing-paths" || true
  # Every writable kernel setting the node's programs are known to change, as it is now.
  sysctl -e kernel.panic kernel.panic_on_oops vm.overcommit_memory vm.panic_on_oom \
    net.ipv4.ip_forward net.ipv6.conf.all.forwarding net.ipv4.conf.all.route_localnet \
    net.bridge.bridge-nf-call-iptables net.bridge.bridge-nf-call-ip6tables \
    net.netfilter.nf_conntrack_max net.netfilter.nf_conntrack_tcp_timeout_established \
    net.netfilter.nf_conntrack_tcp_timeout_close_wait fs.inotify.max_user_instances \
    fs.inotify.max_user_watches kernel.keys.root_maxkeys kernel.keys.root_maxbytes \
    >"$baseline/sysctl.conf" 2>/dev/null || true
  [ "$(sysctl -n net.bridge.bridge-nf-call-iptables 2>/dev/null)" = 1 ] \
    || fail "bridged traffic does not pass through iptables (net.bridge.bridge-nf-call-iptables is not 1), so NetworkPolicies could not be enforced"

  # The belt first, before anything can forward: its own table and base chain, ahead of iptables'
  # filter chains, so no ACCEPT elsewhere can overrule it.
  nft -f - <<NFT
table inet $belt_table {
  chain forward {
    type filter hook forward priority -10; policy accept;
    oifname != "trellis*" counter drop comment "trellis harness: nothing forwarded leaves the machine"
  }
}
NFT
  belt_check || fail "the belt could not be installed"

  ip link add "$node_bridge" type bridge
  ip addr add "$node_ip/${pod_subnet#*/}" dev "$node_bridge"
  ip link set "$node_bridge" up
  # Service addresses and the rest of the harness's range stay on the bridge.
  ip route add "$harness_cidr" dev "$node_bridge"

  # The outside world stand-in: its own namespace behind a link named trellis-* (so the belt lets
  # packets reach it and a NetworkPolicy is the only thing that can stop them). Only packets
  # arriving from the pod bridge are routed there; the machine's own traffic never is.
  ip netns add "$outside_netns"
  ip link add "$outside_link" type veth peer name eth0 netns "$outside_netns"
  # noprefixroute: no route to it in the machine's own table; only pods are routed there.
  ip addr add "$outside_gateway/24" dev "$outside_link" noprefixroute
  ip link set "$outside_link" up
  ip -n "$outside_netns" addr add "$outside_ip/24" dev eth0
  ip -n "$outside_netns" addr add "$metadata_ip/32" dev eth0
  ip -n "$outside_netns" link set eth0 up
  ip -n "$outside_netns" link set lo up
  ip -n "$outside_netns" route add default via "$outside_gateway"
  ip route add "$outside_cidr" dev "$outside_link" table "$outside_table"
  ip route add "$metadata_ip/32" dev "$outside_link" table "$outside_table"
  ip rule add iif "$node_bridge" to "$outside_cidr" lookup "$outside_table" priority 7441
  ip rule add iif "$node_bridge" to "$metadata_ip/32" lookup "$outside_table" priority 7441
  # Something to reach there: a web server on port 80 of both addresses.
  mkdir -p "$node_state/outside"
  echo "the outside world (a test namespace)" >"$node_state/outside/index.html"
  setsid nohup ip netns exec "$outside_netns" python3 -m http.server 80 --directory "$node_state/outside" \
    >"$logs/outside-web.log" 2>&1 </dev/null 8>&- &
  echo $! >"$pids/outside-web.pid"
  touch "$state/real-node"
  say "belt installed, $node_bridge up at $node_ip, the outside world in netns $outside_netns ($outside_ip, $metadata_ip)"
  ;;

node)
  belt_check || fail "refusing to start the node without the belt"
  for binary in containerd containerd-shim-runc-v2 ctr kubelet kube-proxy kube-router coredns local-path-provisioner; do
    [ -x "$bin/$binary" ] || fail "$bin/$binary is missing (up.sh --real-node builds it with build-tools.sh)"
  done
  mkdir -p "$node_state"/{containerd,cni/net.d,cni/ipam,kubelet/pki,kubelet/root,kubelet/pod-logs,kube-proxy,coredns,local-path,volumes} "$shim_dir"
  launch() { # launch NAME BINARY ARGS...: a daemon in its own session, pid recorded
    local name=$1; shift
    setsid nohup "$@" >"$logs/$name.log" 2>&1 8>&- &
    echo $! >"$pids/$name.pid"
  }
  alive() { [ -d "/proc/$(cat "$pids/$1.pid")" ] || fail "$1 exited; the end of $logs/$1.log: $(tail -n 5 "$logs/$1.log")"; }
  wait_for() { # wait_for SECONDS WHAT COMMAND...
    local deadline=$(( $(date +%s) + $1 )) what=$2; shift 2
    until "$@" >/dev/null 2>&1; do
      [ "$(date +%s)" -lt "$deadline" ] || fail "timed out waiting for $what"
      sleep 0.3
    done
  }

  # --- the relay: pods reach the API server at the node address (its Service endpoint) ------------
  launch apiserver-relay socat "TCP-LISTEN:$node_apiserver_port,bind=$node_ip,reuseaddr,fork" "TCP:127.0.0.1:$apiserver_port"
  # The `kubernetes` Service's endpoint: the relay (the API server itself reconciles none here,
  # since it listens on loopback).
  kubectl apply --server-side --field-manager trellis-cluster-up -f - >/dev/null <<YAML
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: kubernetes-relay
  namespace: default
  labels: {kubernetes.io/service-name: kubernetes, endpointslice.kubernetes.io/managed-by: trellis-cluster-up}
addressType: IPv4
endpoints: [{addresses: [$node_ip], conditions: {ready: true}}]
ports: [{name: https, port: $node_apiserver_port, protocol: TCP}]
YAML

  # --- containerd ----------------------------------------------------------------------------------
  ctd=$node_state/containerd
  cat >"$ctd/config.toml" <<TOML
version = 3
root = '$ctd/root'
state = '$ctd/state'
temp = '$ctd/tmp'
disabled_plugins = ['io.containerd.nri.v1.nri', 'io.containerd.snapshotter.v1.devmapper',
  'io.containerd.snapshotter.v1.zfs', 'io.containerd.snapshotter.v1.blockfile',
  'io.containerd.snapshotter.v1.erofs', 'io.containerd.differ.v1.erofs',
  'io.containerd.tracing.processor.v1.otlp', 'io.containerd.internal.v1.tracing']
[plugins]
  [plugins.'io.containerd.cri.v1.images']
    snapshotter = 'overlayfs'
    [plugins.'io.containerd.cri.v1.images'.pinned_images]
      sandbox = 'registry.k8s.io/pause:3.10.2'
  [plugins.'io.containerd.cri.v1.runtime']
    # Root here lacks CAP_SYS_RESOURCE, so no process may lower an OOM score: clamp, don't fail.
    restrict_oom_score_adj = true
    cdi_spec_dirs = ['$ctd/cdi']
    enable_criu = false
    netns_mounts_under_state_dir = true
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = 'io.containerd.runc.v2'
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        BinaryName = '$(command -v runc)'
        Root = '$ctd/runc'
        SystemdCgroup = false
    [plugins.'io.containerd.cri.v1.runtime'.cni]
      bin_dirs = ['$bin/cni']
      conf_dir = '$node_state/cni/net.d'
  [plugins.'io.containerd.grpc.v1.cri']
    stream_server_address = '127.0.0.1'
  [plugins.'io.containerd.internal.v1.opt']
    path = '$ctd/opt'
  [plugins.'io.containerd.server.v1.grpc']
    address = '$ctd/containerd.sock'
  [plugins.'io.containerd.server.v1.ttrpc']
    address = '$ctd/containerd.sock.ttrpc'
  [plugins.'io.containerd.shim.v1.manager']
    socket_dir = '$shim_dir'
TOML
  # ip_masq off: nothing is translated; isGateway makes the bridge the pods' default route.
  cat >"$node_state/cni/net.d/10-trellis.conflist" <<JSON
{"cniVersion":"1.0.0","name":"trellis","plugins":[{"type":"bridge","bridge":"$node_bridge","isGateway":true,
 "ipMasq":false,"hairpinMode":true,"ipam":{"type":"host-local","dataDir":"$node_state/cni/ipam",
 "ranges":[[{"subnet":"$pod_subnet","gateway":"$node_ip"}]],"routes":[{"dst":"0.0.0.0/0"}]}}]}
JSON
  PATH=$bin:$PATH launch containerd "$bin/containerd" --config "$ctd/config.toml"
  wait_for 20 "containerd" "$bin/ctr" -a "$ctd/containerd.sock" version
  ctr() { "$bin/ctr" -a "$ctd/containerd.sock" -n k8s.io "$@" 2>&1 | grep -v 'cgroup v1 is deprecated' || true; }
  # Images are built here and imported, never pulled (there is no registry to pull from).
  images=${TRELLIS_NODE_IMAGES:-$repo/target/images}
  for archive in "$images"/*.tar; do
    [ -f "$archive" ] || fail "no images in $images (make images builds them)"
    ctr images import --platform linux/amd64 "$archive" >/dev/null
  done
  ctr images ls -q | grep -q '^registry.k8s.io/pause:3.10.2$' || fail "the pause image is not among the images in $images"

  # --- kubelet -------------------------------------------------------------------------------------
  kp=$node_state/kubelet/pki
  cp "$pki/ca.crt" "$kp/ca.crt"
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$kp/node.key" \
    -out "$kp/node.csr" -subj "/O=system:nodes/CN=system:node:$real_node" 2>/dev/null
  openssl x509 -req -in "$kp/node.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial -days 2 \
    -out "$kp/node.crt" -extfile <(printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n') 2>/dev/null
  write_kubeconfig "$node_state/kubelet/kubeconfig" "system:node:$real_node" \
    "$(printf '    client-certificate: %s\n    client-key: %s' "$kp/node.crt" "$kp/node.key")"
  # What pods with dnsPolicy Default get: nothing outside the cluster to ask.
  echo "nameserver $cluster_dns_ip" >"$node_state/kubelet/resolv.conf"
  cat >"$node_state/kubelet/config.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# cgroup v2 cannot be had on these machines (memory is bound to v1); 1.36 still runs on v1.
failCgroupV1: false
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://$ctd/containerd.sock
imageServiceEndpoint: unix://$ctd/containerd.sock
address: $node_ip
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication: {anonymous: {enabled: false}, webhook: {enabled: true}, x509: {clientCAFile: $kp/ca.crt}}
authorization: {mode: Webhook}
maxPods: 40
evictionHard: {memory.available: 100Mi, nodefs.available: 1Gi, imagefs.available: 1Gi, nodefs.inodesFree: 1%, imagefs.inodesFree: 1%}
# The images were imported; there is nowhere to pull them from again.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
protectKernelDefaults: false
makeIPTablesUtilChains: false
failSwapOn: false
podLogsDir: $node_state/kubelet/pod-logs
resolvConf: $node_state/kubelet/resolv.conf
clusterDNS: [$cluster_dns_ip]
clusterDomain: cluster.local
rotateCertificates: false
serverTLSBootstrap: false
YAML
  launch kubelet "$bin/kubelet" --config "$node_state/kubelet/config.yaml" \
    --kubeconfig "$node_state/kubelet/kubeconfig" --root-dir "$node_state/kubelet/root" \
    --cert-dir "$node_state/kubelet/root/pki" --hostname-override "$real_node" --node-ip "$node_ip" \
    --node-labels "trellis.dev/node=real" --v=1

  # --- kube-proxy: Services to pod addresses, in iptables ------------------------------------------
  issue_client() { # issue_client NAME SUBJECT: a client certificate from the cluster CA in $pki
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$pki/$1.key" \
      -out "$pki/$1.csr" -subj "$2" 2>/dev/null
    openssl x509 -req -in "$pki/$1.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial -days 2 \
      -out "$pki/$1.crt" -extfile <(printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n') 2>/dev/null
    rm -f "$pki/$1.csr"
  }
  issue_client kube-proxy "/CN=system:kube-proxy"
  write_kubeconfig "$node_state/kube-proxy/kubeconfig" kube-proxy "$(client_certificate kube-proxy)"
  cat >"$node_state/kube-proxy/config.yaml" <<YAML
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
hostnameOverride: $real_node
clientConnection: {kubeconfig: $node_state/kube-proxy/kubeconfig}
clusterCIDR: $pod_subnet
bindAddress: 127.0.0.1
metricsBindAddress: 127.0.0.1:10249
healthzBindAddress: 127.0.0.1:10256
# NodePorts on the bridge only, never on the machine's own interfaces or on loopback (which would
# need route_localnet).
nodePortAddresses: [$node_ip/32]
iptables: {localhostNodePorts: false}
# Leave the machine's conntrack settings alone.
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
YAML
  launch kube-proxy "$bin/kube-proxy" --config "$node_state/kube-proxy/config.yaml" --v=1

  # --- CoreDNS, as kube-dns: a pod in kube-system, cluster names only, nothing forwarded ---------
  # It runs the CoreDNS built by build-tools.sh (main.go) from the probe image, mounted read-only.
  coredns_dir=$(dirname "$(readlink -f "$bin/coredns")")
  kubectl apply --server-side --field-manager trellis-cluster-up -f - >/dev/null <<YAML
apiVersion: v1
kind: ServiceAccount
metadata: {name: coredns, namespace: kube-system}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: trellis-coredns}
rules:
- {apiGroups: [""], resources: [services, pods, namespaces, endpoints], verbs: [list, watch]}
- {apiGroups: [discovery.k8s.io], resources: [endpointslices], verbs: [list, watch]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: trellis-coredns}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: trellis-coredns}
subjects: [{kind: ServiceAccount, name: coredns, namespace: kube-system}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: coredns, namespace: kube-system}
data:
  Corefile: |
    .:53 {
        errors
        ready :8181
        health :8080
        kubernetes cluster.local in-addr.arpa ip6.arpa {
            pods insecure
            ttl 5
        }
        cache 5
    }
---
apiVersion: v1
kind: Pod
metadata:
  name: coredns
  namespace: kube-system
  labels: {k8s-app: kube-dns}
spec:
  serviceAccountName: coredns
  nodeName: $real_node
  priorityClassName: system-cluster-critical
  dnsPolicy: Default
  securityContext:
    runAsNonRoot: true
    runAsUser: 65532
    seccompProfile: {type: RuntimeDefault}
    # Port 53 without any capability.
    sysctls: [{name: net.ipv4.ip_unprivileged_port_start, value: "0"}]
  containers:
  - name: coredns
    image: ${TRELLIS_PROBE_IMAGE:-ghcr.io/trellis-tre/trellis-probe:0.1.0}
    imagePullPolicy: Never
    command: [/opt/coredns/coredns, -conf, /etc/coredns/Corefile]
    ports:
    - {name: dns, containerPort: 53, protocol: UDP}
    - {name: dns-tcp, containerPort: 53, protocol: TCP}
    readinessProbe: {httpGet: {path: /ready, port: 8181}, periodSeconds: 2}
    securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}}
    volumeMounts:
    - {name: config, mountPath: /etc/coredns, readOnly: true}
    - {name: binary, mountPath: /opt/coredns, readOnly: true}
  volumes:
  - {name: config, configMap: {name: coredns}}
  - {name: binary, hostPath: {path: $coredns_dir, type: Directory}}
---
apiVersion: v1
kind: Service
metadata: {name: kube-dns, namespace: kube-system, labels: {k8s-app: kube-dns}}
spec:
  clusterIP: $cluster_dns_ip
  selector: {k8s-app: kube-dns}
  ports:
  - {name: dns, port: 53, protocol: UDP}
  - {name: dns-tcp, port: 53, protocol: TCP}
YAML

  # --- wait for the node, then the provisioner that needs it ---------------------------------------
  node_ready() { [ "$(kubectl get node "$real_node" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]; }
  deadline=$(( $(date +%s) + 90 ))
  until node_ready; do
    for daemon in apiserver-relay containerd kubelet kube-proxy; do alive "$daemon"; done
    [ "$(date +%s)" -lt "$deadline" ] || fail "timed out waiting for node $real_node to be Ready; see $logs/kubelet.log"
    sleep 0.5
  done
  # --- kube-router: the NetworkPolicy enforcer (firewall only: no routing, no service proxy); it
  # needs the node to exist.
  issue_client kube-router "/CN=trellis-kube-router"
  kubectl apply --server-side --field-manager trellis-cluster-up -f - >/dev/null <<YAML
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: trellis-kube-router}
rules:
- {apiGroups: [""], resources: [pods, namespaces, nodes, services, endpoints], verbs: [get, list, watch]}
- {apiGroups: [networking.k8s.io], resources: [networkpolicies], verbs: [get, list, watch]}
- {apiGroups: [discovery.k8s.io], resources: [endpointslices], verbs: [get, list, watch]}
- {apiGroups: [""], resources: [events], verbs: [create, patch]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: trellis-kube-router}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: trellis-kube-router}
subjects: [{kind: User, name: trellis-kube-router, apiGroup: rbac.authorization.k8s.io}]
YAML
  write_kubeconfig "$node_state/kube-router.kubeconfig" trellis-kube-router "$(client_certificate kube-router)"
  # Its first sync can lose a race with kube-proxy for the xtables lock on a busy machine, and it
  # then exits: give it three tries, keeping each try's log.
  for try in 1 2 3; do
    launch kube-router "$bin/kube-router" --run-firewall=true --run-router=false --run-service-proxy=false \
      --enable-cni=false --enable-ipv6=false --hostname-override "$real_node" \
      --kubeconfig "$node_state/kube-router.kubeconfig" --service-cluster-ip-range "$real_service_cidr" \
      --health-port 0 --metrics-port 0 --v=1
    sleep 3
    [ -d "/proc/$(cat "$pids/kube-router.pid")" ] && break
    say "kube-router exited (try $try): $(tail -n 3 "$logs/kube-router.log")"
    cp "$logs/kube-router.log" "$logs/kube-router.$try.log"
  done

  wait_for 60 "CoreDNS to be ready" kubectl -n kube-system wait pod/coredns --for condition=Ready --timeout 1s

  # Claims become directories under $node_state/volumes, made and removed by helper pods that run
  # the probe image (busybox) on the node.
  issue_client local-path-provisioner "/CN=trellis-local-path-provisioner"
  kubectl apply --server-side --field-manager trellis-cluster-up -f - >/dev/null <<YAML
apiVersion: v1
kind: Namespace
metadata: {name: local-path-storage}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: trellis-local-path-provisioner}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}
subjects: [{kind: User, name: trellis-local-path-provisioner, apiGroup: rbac.authorization.k8s.io}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: local-path-config, namespace: local-path-storage}
data:
  config.json: |
    {"nodePathMap": [{"node": "DEFAULT_PATH_FOR_NON_LISTED_NODES", "paths": ["$node_state/volumes"]}]}
  setup: |
    #!/bin/sh
    set -eu
    mkdir -m 0777 -p "\$VOL_DIR"
  teardown: |
    #!/bin/sh
    set -eu
    rm -rf "\$VOL_DIR"
  helperPod.yaml: |
    apiVersion: v1
    kind: Pod
    metadata: {name: helper-pod}
    spec:
      priorityClassName: system-node-critical
      tolerations: [{operator: Exists}]
      containers:
      - name: helper-pod
        image: ${TRELLIS_PROBE_IMAGE:-ghcr.io/trellis-tre/trellis-probe:0.1.0}
        imagePullPolicy: Never
        # The volumes' parent directory belongs to root on the node.
        securityContext: {runAsUser: 0}
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: local-path
  annotations: {storageclass.kubernetes.io/is-default-class: "true"}
provisioner: rancher.io/local-path
volumeBindingMode: WaitForFirstConsumer
reclaimPolicy: Delete
YAML
  write_kubeconfig "$node_state/local-path/kubeconfig" trellis-local-path-provisioner "$(client_certificate local-path-provisioner)"
  KUBECONFIG=$node_state/local-path/kubeconfig POD_NAMESPACE=local-path-storage \
    launch local-path-provisioner "$bin/local-path-provisioner" start \
    --namespace local-path-storage --configmap-name local-path-config \
    --service-account-name default --provisioner-name rancher.io/local-path
  sleep 1
  for daemon in apiserver-relay containerd kubelet kube-proxy kube-router local-path-provisioner; do alive "$daemon"; done
  belt_check || fail "the belt is gone"
  say "node $real_node Ready (kubelet, containerd $("$bin/containerd" --version | awk '{print $3}'), runc $(runc --version | awk 'NR==1{print $3}'), CNI bridge, kube-proxy, kube-router, CoreDNS, local-path)"
  ;;
*) fail "usage: node-up.sh network|node" ;;
esac
