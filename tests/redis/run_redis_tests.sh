#!/usr/bin/env bash
# The Redis host against a real redis-server on a free loopback port (append-only, fsync always, in a
# temporary directory, stopped on exit):
#   (a) T threads x R requests colliding on a few users: each acknowledged request in its user's
#       history exactly once (redis_host --check);
#   (b) the server killed and restarted from its AOF in the middle of a run: no acknowledged record lost;
#   (c) corrupt records under four users' keys: a clear error each, the user started afresh and counted.
# With --load, instead: the load runs of docs/scale_out.md (1, 2 and 4 threads, bounded in requests and
# seconds), under appendfsync always and everysec.
# Usage: run_redis_tests.sh REDIS_HOST_BINARY REDIS_SERVER_BINARY SAMPLE_DIR [--load]
set -euo pipefail
host_bin=$1 server_bin=$2 sample=$3 mode=${4:-test}
cli_bin=$(dirname "$server_bin")/redis-cli
[[ -x $cli_bin ]] || cli_bin=$(command -v redis-cli)

tmp=$(mktemp -d "${TMPDIR:-/tmp}/poem-redis.XXXXXX")
server_pid=
cleanup() {
  if [[ -n $server_pid ]]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

# A free port: the kernel picks one; the moment between closing it and redis-server binding it is short.
port=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cli() { "$cli_bin" -h 127.0.0.1 -p "$port" "$@"; }

start_server() {  # [fsync policy]
  "$server_bin" --port "$port" --bind 127.0.0.1 --dir "$tmp" --appendonly yes --appendfsync "${1:-always}" --save '' \
    --daemonize no >> "$tmp/server.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 100); do
    [[ $(cli ping 2>/dev/null) == PONG ]] && return 0
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.05
  done
  echo "FAIL: redis-server did not start on port $port"; tail -20 "$tmp/server.log"; exit 1
}

fail() { echo "FAIL: $*"; echo "--- host output:"; cat "$tmp/out" "$tmp/err" 2>/dev/null; exit 1; }
host() { "$host_bin" --port "$port" --sample "$sample" "$@" > "$tmp/out" 2> "$tmp/err"; }
counter() { grep -o "$1=[0-9]*" "$tmp/out" | cut -d= -f2; }
# The named counters of the last run, then its check line.
show() {
  local k; for k in "$@"; do printf "%s, " "$(grep -o "$k=[0-9]*" "$tmp/out")"; done; grep "^check:" "$tmp/out"
}

stop_server() { kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=; }

if [[ $mode == --load ]]; then
  for fsync in always everysec; do
    start_server "$fsync"
    for threads in 1 2 4; do
      host --threads "$threads" --requests 1000 --seconds 8 --users 500 --load || fail "load, $threads threads"
      echo "appendfsync $fsync, $threads threads: $(sed -n 1,3p "$tmp/out" | tr '\n' ' ')"
    done
    stop_server
  done
  exit 0
fi

start_server
echo "redis-server $("$server_bin" --version | grep -o 'v=[0-9.]*') on 127.0.0.1:$port, AOF in $tmp"

# (a) Collisions: 4 threads x 150 requests over 5 users, then again over the same histories.
for round in 1 2; do
  host --threads 4 --requests 150 --users 5 --seed "$round" --check || fail "(a) round $round"
  [[ $(counter failed) == 0 ]] || fail "(a) unacknowledged requests"
  [[ $(counter conflicts) -gt 0 ]] || fail "(a) no compare-and-set conflict: the run did not collide"
  echo "(a) round $round: $(show acked conflicts)"
done

# (b) Kill the server (SIGKILL: no shutdown save) mid-run and restart it from the same AOF.
keys_before=$(cli dbsize)
host --threads 4 --requests 5000 --users 8 --seed 3 --seconds 4 --check --retry-seconds 20 &
host_pid=$!
for _ in $(seq 200); do  # until the run has acknowledged writes (each leaves a marker key)
  [[ $(cli dbsize) -gt $((keys_before + 50)) ]] && break
  sleep 0.05
done
kill -0 "$host_pid" 2>/dev/null || fail "(b) the run ended before the restart: make it longer"
kill -KILL "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=
sleep 0.5
start_server
wait "$host_pid" || fail "(b) the run after a restart"
[[ $(counter reconnects) -gt 0 ]] || fail "(b) the host saw no connection error: the restart missed the run"
[[ $(counter failed) == 0 ]] || fail "(b) unacknowledged requests"
echo "(b) killed and restarted mid-run: $(show acked reconnects script_reloads replayed_writes)"

# (c) Corrupt four users' records in four ways, then serve them.
host --threads 1 --requests 40 --users 6 --seed 4 --prefix c: --check || fail "(c) populating"
flip="local h = redis.call('HGET', KEYS[1], 'h'); local i = math.floor(#h / 2)
redis.call('HSET', KEYS[1], 'h', h:sub(1, i - 1) .. string.char((h:byte(i) + 1) % 256) .. h:sub(i + 1)); return i"
truncate="local h = redis.call('HGET', KEYS[1], 'h'); redis.call('HSET', KEYS[1], 'h', h:sub(1, #h - 7))"
copy="redis.call('HSET', KEYS[1], 'h', redis.call('HGET', KEYS[2], 'h'))"
cli eval "$flip" 1 'c:{1}' > /dev/null                                        # one byte changed
cli eval "$truncate" 1 'c:{2}' > /dev/null                                    # truncated
cli del 'c:{3}' > /dev/null; cli set 'c:{3}' 'not a history' > /dev/null      # not a hash
cli eval "$copy" 2 'c:{4}' 'c:{5}' > /dev/null                                # another user's history
host --threads 2 --requests 40 --users 6 --seed 5 --prefix c: --check || fail "(c) serving corrupt records"
[[ $(counter corrupt_recovered) == 4 ]] || fail "(c) expected 4 recovered users"
[[ $(counter failed) == 0 ]] || fail "(c) unacknowledged requests"
unreadable="the stored history is unreadable (poem:"
for want in "user 1: $unreadable user_history::deserialize: checksum mismatch" \
            "user 2: $unreadable user_history::deserialize: checksum mismatch" \
            "user 3: $unreadable redis_history_store: the key of user 3 holds a Redis string, not a hash" \
            "user 4: $unreadable redis_history_store: the key of user 4 holds the history of user 5"; do
  grep -qF "$want" "$tmp/err" || fail "(c) no message '$want'"
done
sed 's/^/    /' "$tmp/err"
echo "(c) $(show corrupt_seen corrupt_recovered)"
host --threads 2 --requests 40 --users 6 --seed 6 --prefix c: --check || fail "(c) after recovery"
[[ $(counter corrupt_seen) == 0 ]] || fail "(c) corrupt records remain after recovery"
echo "(c) afterwards: $(show corrupt_seen)"
echo "redis tests passed"
