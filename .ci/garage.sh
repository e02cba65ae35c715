# A single-node Garage (a real, distributed-capable S3 server) for the test suite.
# Sourced by .ci/run. Builds garage with cargo once and reuses ~/.cargo/bin/garage after
# that (about 10 minutes cold on 2 cores). Sets TEST_S3_* for the tests.
GARAGE_VERSION=2.5.0
GARAGE_DIR=${GARAGE_DIR:-/tmp/toxtemp-garage}

install_garage() {
  if command -v garage >/dev/null 2>&1 && garage --version 2>/dev/null | grep -q "$GARAGE_VERSION"; then
    return
  fi
  echo "building garage $GARAGE_VERSION (cached in ~/.cargo/bin after this run)"
  cargo install garage --locked --version "$GARAGE_VERSION" --quiet
}

start_garage() {
  install_garage
  pkill -f "garage -c $GARAGE_DIR/garage.toml" 2>/dev/null || true
  rm -rf "$GARAGE_DIR" && mkdir -p "$GARAGE_DIR"
  cat > "$GARAGE_DIR/garage.toml" <<TOML
metadata_dir = "$GARAGE_DIR/meta"
data_dir = "$GARAGE_DIR/data"
db_engine = "sqlite"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:3901"
rpc_public_addr = "127.0.0.1:3901"
rpc_secret = "$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"

[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:3900"
root_domain = ".s3.garage.localhost"
TOML
  export TEST_S3_ENDPOINT_URL="http://127.0.0.1:3900"
  export TEST_S3_BUCKET="toxtemp-ci"
  export TEST_S3_ACCESS_KEY_ID="GK$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  export TEST_S3_SECRET_ACCESS_KEY="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  export TEST_S3_REGION="garage"
  GARAGE_DEFAULT_ACCESS_KEY="$TEST_S3_ACCESS_KEY_ID" \
  GARAGE_DEFAULT_SECRET_KEY="$TEST_S3_SECRET_ACCESS_KEY" \
  GARAGE_DEFAULT_BUCKET="$TEST_S3_BUCKET" \
  RUST_LOG=warn \
    garage -c "$GARAGE_DIR/garage.toml" server --single-node --default-bucket >"$GARAGE_DIR/log" 2>&1 &
  GARAGE_PID=$!
  for _ in $(seq 1 60); do
    if curl -s -o /dev/null "http://127.0.0.1:3900/"; then
      break
    fi
    sleep 0.5
  done
  sleep 1
  kill -0 "$GARAGE_PID" || { cat "$GARAGE_DIR/log"; return 1; }
  echo "garage $GARAGE_VERSION listening on $TEST_S3_ENDPOINT_URL, bucket $TEST_S3_BUCKET"
}

stop_garage() {
  [ -n "${GARAGE_PID:-}" ] && kill "$GARAGE_PID" 2>/dev/null || true
}
