#!/usr/bin/env bash
# Starts a real Kubernetes control plane on 127.0.0.1: etcd, kube-apiserver (RBAC, admission
# including ValidatingAdmissionPolicy and PodSecurity, service-account issuer), controller-manager,
# scheduler, and kwok simulating two nodes. PKI is generated per cluster. Writes an admin
# kubeconfig to target/cluster/kubeconfig and links the tools into target/cluster/bin.
# Refuses to start a second cluster; with --reuse, a running one is accepted as it is.
set -euo pipefail
source "$(dirname "$0")/env.sh"
reuse=false real=false
for arg in "$@"; do
  case $arg in
    --reuse) reuse=true ;;
    --real-node) real=true ;;
    *) echo "usage: up.sh [--reuse] [--real-node]" >&2; exit 2 ;;
  esac
done
start_ns=$(date +%s%N)

"$here/build-tools.sh" kubernetes etcd kwok helm dex
if $real; then
  "$here/build-tools.sh" kubelet containerd cni coredns local-path-provisioner kube-router
  # Pods cannot reach addresses on the machine's loopback: with the real node, Services get
  # addresses kube-proxy translates on the node, and the API server is advertised at the node
  # address (node-up.sh relays it to loopback).
  service_cidr=$real_service_cidr
fi

mkdir -p "$state"
exec 8>"$state/.lock"
flock -n 8 || { echo "cluster-up: another cluster-up or cluster-down is in progress for $state" >&2; exit 1; }
running=()
for component in "${components[@]}"; do
  running_pid "$component" >/dev/null && running+=("$component")
done
if [ ${#running[@]} -eq ${#components[@]} ] && $reuse; then
  echo "cluster-up: reusing the cluster already running from $state"
  exit 0
elif [ ${#running[@]} -gt 0 ]; then
  echo "cluster-up: a cluster is already running from $state (${running[*]}); run 'make cluster-down' first" >&2
  exit 1
fi
for port in $etcd_port $etcd_peer_port $apiserver_port $controller_manager_port $scheduler_port $kwok_port; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "cluster-up: port 127.0.0.1:$port is already in use by another program" >&2
    exit 1
  fi
done
rm -rf "$pki" "$pids" "$logs" "$state/etcd" "$state"/*.kubeconfig "$kubeconfig"
mkdir -p "$pki" "$pids" "$logs"
if $real; then
  # The belt and the bridge come before anything else, so nothing started later can forward a
  # packet out of the machine.
  "$here/node-up.sh" network || { "$here/node-down.sh" >&2; exit 1; }
fi

fail() {
  echo "cluster-up: $*" >&2
  echo "cluster-up: logs are in $logs; stopping what was started" >&2
  "$here/down.sh" --keep-logs >&2 || true
  exit 1
}

# --- PKI: one CA per cluster, short-lived, EC keys (fast to generate) -------------------------
openssl_quiet() { openssl "$@" 2>/dev/null; }
openssl_quiet req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
  -keyout "$pki/ca.key" -out "$pki/ca.crt" -subj "/CN=trellis-local-ca" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature"
issue() { # issue NAME SUBJECT EXTENSIONS
  openssl_quiet req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$pki/$1.key" -out "$pki/$1.csr" -subj "$2"
  openssl_quiet x509 -req -in "$pki/$1.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
    -days 30 -out "$pki/$1.crt" -extfile <(printf '%b' "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n$3")
  rm -f "$pki/$1.csr"
}
# The first address of the service range is the `kubernetes` Service's.
first_service_ip=$(python3 -c 'import ipaddress,sys; print(ipaddress.ip_network(sys.argv[1])[1])' "$service_cidr")
issue apiserver "/CN=kube-apiserver" \
  "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,IP:$first_service_ip,IP:$node_ip,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
# The API server's client certificate towards kubelets (logs, exec, port-forward).
issue apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" "extendedKeyUsage=clientAuth"
client="extendedKeyUsage=clientAuth"
issue admin "/O=system:masters/CN=trellis-admin" "$client"
issue kube-controller-manager "/CN=system:kube-controller-manager" "$client"
issue kube-scheduler "/CN=system:kube-scheduler" "$client"
# kwok plays every kubelet; like the kubelets of a test cluster it is trusted with the whole API.
issue kwok "/O=system:masters/CN=kwok" "$client"
openssl_quiet genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$pki/service-account.key"
openssl_quiet pkey -in "$pki/service-account.key" -pubout -out "$pki/service-account.pub"

write_kubeconfig "$kubeconfig" admin "$(client_certificate admin)"
for component in kube-controller-manager kube-scheduler kwok; do
  write_kubeconfig "$state/$component.kubeconfig" "$component" "$(client_certificate "$component")"
done

launch() { # launch COMPONENT ARGS...
  local component=$1; shift
  # fd 8 holds the start-up lock; the daemons must not inherit it.
  # Its own session: a Ctrl-C in the terminal that started it (e.g. ending `make dev`) must not
  # stop the control plane.
  setsid nohup "$bin/$component" "$@" >"$logs/$component.log" 2>&1 8>&- &
  echo $! >"$pids/$component.pid"
}
wait_until() { # wait_until SECONDS DESCRIPTION COMMAND...
  local deadline=$(( $(date +%s) + $1 )) what=$2; shift 2
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "timed out waiting for $what"
    sleep 0.2
  done
}
alive() { running_pid "$1" >/dev/null || fail "$1 exited; see $logs/$1.log"; }

# --- etcd ----------------------------------------------------------------------------------------
launch etcd --name trellis --data-dir "$state/etcd" \
  --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
  --listen-peer-urls "http://127.0.0.1:$etcd_peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer_port" \
  --initial-cluster "trellis=http://127.0.0.1:$etcd_peer_port" \
  --listen-metrics-urls "" --log-level warn --quota-backend-bytes 4294967296 --unsafe-no-fsync
wait_until 30 "etcd to be healthy" curl -sf "http://127.0.0.1:$etcd_port/health"

# --- kube-apiserver ------------------------------------------------------------------------------
if $real; then
  # The `kubernetes` Service's endpoint is node-up.sh's relay on the node address.
  endpoint_flags=(--advertise-address "$node_ip" --endpoint-reconciler-type none)
else
  endpoint_flags=(--advertise-address 127.0.0.1 --endpoint-reconciler-type none)
fi
launch kube-apiserver \
  --etcd-servers "http://127.0.0.1:$etcd_port" \
  --bind-address 127.0.0.1 --secure-port "$apiserver_port" "${endpoint_flags[@]}" \
  --kubelet-client-certificate "$pki/apiserver-kubelet-client.crt" --kubelet-client-key "$pki/apiserver-kubelet-client.key" \
  --kubelet-preferred-address-types InternalIP \
  --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
  --client-ca-file "$pki/ca.crt" \
  --requestheader-client-ca-file "$pki/ca.crt" --requestheader-allowed-names front-proxy-client \
  --requestheader-username-headers X-Remote-User --requestheader-group-headers X-Remote-Group \
  --requestheader-extra-headers-prefix X-Remote-Extra- \
  --service-account-issuer "https://127.0.0.1:$apiserver_port" \
  --service-account-key-file "$pki/service-account.pub" \
  --service-account-signing-key-file "$pki/service-account.key" \
  --service-cluster-ip-range "$service_cidr" \
  --authorization-mode Node,RBAC \
  --enable-admission-plugins NodeRestriction \
  --allow-privileged=true \
  --profiling=false
ready() { curl -sf --cacert "$pki/ca.crt" --cert "$pki/admin.crt" --key "$pki/admin.key" "https://127.0.0.1:$apiserver_port/readyz"; }
deadline=$(( $(date +%s) + 60 ))
until ready >/dev/null 2>&1; do
  alive kube-apiserver
  [ "$(date +%s)" -lt "$deadline" ] || fail "timed out waiting for kube-apiserver to be ready"
  sleep 0.2
done

# --- controllers, scheduler and simulated nodes --------------------------------------------------
launch kube-controller-manager \
  --kubeconfig "$state/kube-controller-manager.kubeconfig" \
  --authentication-kubeconfig "$state/kube-controller-manager.kubeconfig" \
  --authorization-kubeconfig "$state/kube-controller-manager.kubeconfig" \
  --bind-address 127.0.0.1 --secure-port "$controller_manager_port" \
  --leader-elect=false --use-service-account-credentials \
  --kube-api-qps 200 --kube-api-burst 400 --concurrent-statefulset-syncs 20 \
  --service-account-private-key-file "$pki/service-account.key" --root-ca-file "$pki/ca.crt" \
  --cluster-signing-cert-file "$pki/ca.crt" --cluster-signing-key-file "$pki/ca.key" \
  --controllers '*,-nodeipam,-cloud-node-lifecycle,-service-lb-controller,-node-route-controller'
launch kube-scheduler \
  --kubeconfig "$state/kube-scheduler.kubeconfig" \
  --authentication-kubeconfig "$state/kube-scheduler.kubeconfig" \
  --authorization-kubeconfig "$state/kube-scheduler.kubeconfig" \
  --bind-address 127.0.0.1 --secure-port "$scheduler_port" --leader-elect=false
launch kwok \
  --kubeconfig "$state/kwok.kubeconfig" \
  --config "$bin/kwok-stages.yaml" \
  --manage-all-nodes=false --manage-nodes-with-annotation-selector kwok.x-k8s.io/node=fake \
  --cidr "$pod_cidr" --node-ip "${node_ips[0]}" \
  --node-lease-duration-seconds 40 \
  --server-address "127.0.0.1:$kwok_port"

kubectl() { "$bin/kubectl" --kubeconfig "$kubeconfig" "$@"; }
for i in "${!node_ips[@]}"; do
  name=kwok-node-$((i + 1))
  kubectl apply --server-side --field-manager trellis-cluster-up -f - >/dev/null <<YAML || fail "could not create node $name"
apiVersion: v1
kind: Node
metadata:
  name: $name
  annotations:
    kwok.x-k8s.io/node: fake
    node.alpha.kubernetes.io/ttl: "0"
  labels:
    kubernetes.io/hostname: $name
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    type: kwok
$(if $real; then printf 'spec:\n  taints: [{key: trellis.dev/simulated, effect: NoSchedule}]'; fi)
status:
  addresses:
  - {type: InternalIP, address: ${node_ips[$i]}}
  - {type: Hostname, address: $name}
  allocatable: {cpu: "1000", memory: 4Ti, pods: "2000", ephemeral-storage: 10Ti}
  capacity: {cpu: "1000", memory: 4Ti, pods: "2000", ephemeral-storage: 10Ti}
YAML
done
deadline=$(( $(date +%s) + 60 ))
until [ "$(kubectl get nodes -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' 2>/dev/null | grep -c True)" -eq "${#node_ips[@]}" ]; do
  for component in "${components[@]}"; do alive "$component"; done
  [ "$(date +%s)" -lt "$deadline" ] || fail "timed out waiting for the simulated nodes to be Ready"
  sleep 0.2
done
# The default StorageClass, whose claims kwok provisions and whose released volumes it deletes.
# With the real node, its local-path class is the default (node-up.sh).
if ! $real; then
  kubectl apply --server-side --field-manager trellis-cluster-up -f "$bin/kwok-storage-class.yaml" >/dev/null \
    || fail "could not create the kwok-volume StorageClass"
fi
# Namespaced work needs the default ServiceAccount, which the controller-manager creates.
wait_until 60 "the default ServiceAccount" kubectl get serviceaccount default -n default

if $real; then
  "$here/node-up.sh" node || fail "the real node did not start"
fi

elapsed_ms=$(( ($(date +%s%N) - start_ns) / 1000000 ))
printf 'cluster-up: Kubernetes %s ready in %d.%03ds\n' \
  "$(kubectl get --raw /version | sed -n 's/.*"gitVersion": *"\(v[^"]*\)".*/\1/p')" \
  $((elapsed_ms / 1000)) $((elapsed_ms % 1000))
echo "cluster-up: export KUBECONFIG=$kubeconfig  (tools in $bin)"
