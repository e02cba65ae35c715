# A three-node Garage cluster (replication factor 3) on this machine, for the multi-server
# scenario of .ci/run. Sourced; needs install_garage from garage.sh. Node N listens for S3 on
# 39N0 and for RPC on 39N1. Sets CLUSTER_S3_* (the app talks to node 1).
CLUSTER_DIR=${CLUSTER_DIR:-/tmp/toxtemp-garage-cluster}

cluster_config() { # node number
  local n=$1
  cat <<TOML
metadata_dir = "$CLUSTER_DIR/node$n/meta"
data_dir = "$CLUSTER_DIR/node$n/data"
db_engine = "sqlite"
replication_factor = 3
rpc_bind_addr = "127.0.0.1:39${n}1"
rpc_public_addr = "127.0.0.1:39${n}1"
rpc_secret = "$CLUSTER_SECRET"

[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:39${n}0"
root_domain = ".s3.garage.localhost"
TOML
}

start_cluster_node() { # node number
  local n=$1
  RUST_LOG=warn garage -c "$CLUSTER_DIR/node$n.toml" server >>"$CLUSTER_DIR/node$n.log" 2>&1 &
  echo $! >"$CLUSTER_DIR/node$n.pid"
  for _ in $(seq 1 60); do
    curl -s -o /dev/null "http://127.0.0.1:39${n}0/" && return 0
    sleep 0.5
  done
  cat "$CLUSTER_DIR/node$n.log"
  return 1
}

stop_cluster_node() { # node number
  local pid
  pid=$(cat "$CLUSTER_DIR/node$1.pid" 2>/dev/null) || return 0
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

start_garage_cluster() {
  install_garage
  pkill -f "garage -c $CLUSTER_DIR/" 2>/dev/null || true
  rm -rf "$CLUSTER_DIR" && mkdir -p "$CLUSTER_DIR"
  CLUSTER_SECRET="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  for n in 1 2 3; do
    mkdir -p "$CLUSTER_DIR/node$n"
    cluster_config "$n" >"$CLUSTER_DIR/node$n.toml"
    start_cluster_node "$n"
  done
  local g="garage -c $CLUSTER_DIR/node1.toml"
  for n in 2 3; do
    $g node connect "$(garage -c "$CLUSTER_DIR/node$n.toml" node id -q)" >/dev/null
  done
  for n in 1 2 3; do
    $g layout assign -z "dc$n" -c 1G "$(garage -c "$CLUSTER_DIR/node$n.toml" node id -q | cut -c1-16)" >/dev/null
  done
  $g layout apply --version 1 >>"$CLUSTER_DIR/setup.log" 2>&1
  $g bucket create toxtemp-cluster >>"$CLUSTER_DIR/setup.log" 2>&1
  $g key create toxtemp-app >>"$CLUSTER_DIR/setup.log" 2>&1
  $g bucket allow --read --write --owner toxtemp-cluster --key toxtemp-app >>"$CLUSTER_DIR/setup.log" 2>&1
  local key=""
  for _ in $(seq 1 20); do
    key=$($g key info toxtemp-app --show-secret 2>>"$CLUSTER_DIR/setup.log") && break
    sleep 0.5
  done
  export CLUSTER_S3_ACCESS_KEY_ID=$(echo "$key" | awk '/^Key ID:/ {print $NF}')
  export CLUSTER_S3_SECRET_ACCESS_KEY=$(echo "$key" | awk '/^Secret key:/ {print $NF}')
  export CLUSTER_S3_ENDPOINT_URL="http://127.0.0.1:3910"
  export CLUSTER_S3_BUCKET="toxtemp-cluster"
  echo "garage cluster of 3 nodes (replication 3), S3 on $CLUSTER_S3_ENDPOINT_URL"
}

stop_garage_cluster() {
  for n in 1 2 3; do stop_cluster_node "$n"; done
}
