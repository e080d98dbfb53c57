# Process supervision shared by the control plane's and the real node's scripts.
# The caller sets STATE_DIR (logs/ and pids/ live there); start-up callers also set log, die,
# deadline (epoch seconds), started_at and STARTUP_TIMEOUT_S.
# shellcheck shell=bash

# Starts a component in its own session, output to logs/<name>.log, pid to pids/<name>.pid.
start() {
  local name=$1; shift
  setsid "$@" >"$STATE_DIR/logs/$name.log" 2>&1 </dev/null &
  echo $! >"$STATE_DIR/pids/$name.pid"
}
alive() { kill -0 "$(cat "$STATE_DIR/pids/$1.pid")" 2>/dev/null; }
# Polls a check (a command) until it passes; fails early if one of the named components has exited.
wait_until() {
  local what=$1 check=$2; shift 2
  until $check >/dev/null 2>&1; do
    for c in "$@"; do alive "$c" || die "$c exited while waiting for $what"; done
    (( $(date +%s) < deadline )) || die "timed out after ${STARTUP_TIMEOUT_S}s waiting for $what"
    sleep 0.2
  done
  log "$what ($(printf '%.1f' "$(echo "$(date +%s.%N) - $started_at" | bc)")s)"
}

# A recorded pid is ours only while its command line still names STATE_DIR (pids get recycled).
ours() { [[ -r /proc/$1/cmdline ]] && tr '\0' ' ' </proc/"$1"/cmdline | grep -qF -- "$STATE_DIR"; }
# Stops one component: SIGTERM, then SIGKILL if it is still there after 10 s.
stop() {
  local name=$1 pid
  [[ -f "$STATE_DIR/pids/$name.pid" ]] || return 0
  pid=$(cat "$STATE_DIR/pids/$name.pid")
  ours "$pid" || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 100); do ours "$pid" || return 0; sleep 0.1; done
  echo "$name (pid $pid) ignored SIGTERM for 10s; sending SIGKILL" >&2
  kill -KILL "$pid" 2>/dev/null || true
}
