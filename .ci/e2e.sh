# Browser end-to-end tests: Debian's Chromium driven by playwright-core (which never
# downloads a browser of its own). Sourced by .ci/run.
run_e2e() {
  if [ ! -x /usr/bin/chromium ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  fi
  cargo build --locked --quiet
  local bin="${CARGO_TARGET_DIR:-$PWD/target}/debug/toxtemp"
  (cd e2e && npm ci --no-audit --no-fund --silent)
  (cd e2e && TOXTEMP_BIN="$bin" node --test --test-concurrency=1 tests/)
}
