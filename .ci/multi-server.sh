# The multi-server scenario (.ci/multi_server.py): two app servers on one PostgreSQL
# database and a three-node Garage cluster. Sourced by .ci/run after postgres.sh and
# garage.sh.
run_multi_server() {
  source .ci/garage-cluster.sh
  start_garage_cluster
  su postgres -c "psql -qc 'DROP DATABASE IF EXISTS toxtemp_multi'" >/dev/null
  su postgres -c "psql -qc 'CREATE DATABASE toxtemp_multi OWNER toxtemp'" >/dev/null
  local status=0
  rm -rf /tmp/toxtemp-multi-server
  DATABASE_URL="postgres://toxtemp:toxtemp@127.0.0.1:5432/toxtemp_multi" \
  TOXTEMP_BIN="${CARGO_TARGET_DIR:-$PWD/target}/debug/toxtemp" \
    python3 .ci/multi_server.py || status=$?
  if [ "$status" -ne 0 ]; then
    tail -n 40 /tmp/toxtemp-multi-server/*.log || true
  fi
  stop_garage_cluster
  return "$status"
}
