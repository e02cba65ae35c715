# Install (Debian package), start and provision a PostgreSQL server for the test suite.
# Sourced by .ci/run; sets PG_URL. Idempotent: a second run reuses what the first made.
PG_URL="postgres://toxtemp:toxtemp@127.0.0.1:5432/toxtemp_test"

start_postgres() {
  if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  fi
  local ver
  ver=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
  if ! pg_lsclusters -h | awk '{print $1" "$2}' | grep -qx "$ver main"; then
    pg_createcluster "$ver" main >/dev/null
  fi
  pg_ctlcluster "$ver" main start 2>/dev/null || true
  for _ in $(seq 1 30); do
    pg_isready -q -h 127.0.0.1 -p 5432 && break
    sleep 1
  done
  pg_isready -h 127.0.0.1 -p 5432
  su postgres -c "psql -qtAc \"SELECT 1 FROM pg_roles WHERE rolname='toxtemp'\"" | grep -q 1 ||
    su postgres -c "psql -qc \"CREATE ROLE toxtemp LOGIN PASSWORD 'toxtemp' CREATEDB\""
  su postgres -c "psql -qtAc \"SELECT 1 FROM pg_database WHERE datname='toxtemp_test'\"" | grep -q 1 ||
    su postgres -c "psql -qc 'CREATE DATABASE toxtemp_test OWNER toxtemp'"
}
