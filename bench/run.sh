#!/usr/bin/env bash
# latchkey benchmarks: a release build on a fresh database, 1,000 seeded
# identities, and wrk (Debian package `wrk`) at 64 connections.
#
#   bash bench/run.sh                 # SQLite, one instance
#   bash bench/run.sh postgres        # PostgreSQL (BENCH_POSTGRES_URL or the local server), one instance
#   bash bench/run.sh postgres 2      # PostgreSQL, two instances sharing the database
#   BENCH_SCENARIOS="start verify" bash bench/run.sh   # some of: alive start session jwt login verify reset
#   BENCH_BIN=/path/to/latchkey bash bench/run.sh       # another build (an earlier commit, for a before/after)
#   BENCH_RUST_LOG=info bash bench/run.sh                # the server's log level (default warn, see below)
#   BENCH_PEERS=1 bash bench/run.sh   # also better-auth and latchkey through ../shared/peers (same load, same sitting);
#                                     # BENCH_PEERS=DIR reuses a copy of ../shared/peers already set up
#
# Prints req/s, p50/p99 latency and the server's peak RSS per scenario, and
# appends them to bench/results.txt; then each target of issue 13 with its
# verdict. Limits are switched off (0) so the server, not the rate limiter,
# is measured. Login and reset run at BENCH_HASH_CONNECTIONS (16), a load
# the Argon2 queue admits: at 64 most of them would be answered 503
# `overloaded` at once, which is the overload answer, not hashing throughput.
set -euo pipefail
cd "$(dirname "$0")/.."
backend=${1:-sqlite}
instances=${2:-1}
duration=${BENCH_DURATION:-15s}
hash_connections=${BENCH_HASH_CONNECTIONS:-16}
verify_flows=${BENCH_VERIFY_FLOWS:-30000}
reset_flows=${BENCH_RESET_FLOWS:-3000}
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }

cargo build --release --quiet --bin latchkey --example argon2_ceiling
bin=${BENCH_BIN:-./target/release/latchkey}
bin_abs=$(realpath "$bin")
ceiling=$(./target/release/examples/argon2_ceiling)
echo "$ceiling"
echo "$(date -u +%FT%TZ) $ceiling" >> bench/results.txt
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

case "$backend" in
  sqlite) db="sqlite://$work/latchkey.db" ;;
  postgres)
    base=${BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432}
    name="latchkey_bench_$$"
    psql -q "$base/test" -c "create database $name"
    trap 'cleanup; psql -q "$base/test" -c "drop database if exists $name with (force)"' EXIT
    db="$base/$name" ;;
  *) echo "backend: sqlite or postgres" >&2; exit 2 ;;
esac

export LATCHKEY_DATABASE_URL=$db
export LATCHKEY_RATE_LIMIT__IP_PER_MINUTE=0
export LATCHKEY_RECOVERY__MAX_STARTS_PER_HOUR=0
export LATCHKEY_COURIER__MAIL_DIR=$work/mail
# No access lines: at 57,000 req/s the alive flood alone would log 140 MB.
# Starts measured the same at the default level (info) as at warn
# (BENCHMARKS.md, 2026-12-06, fifth sitting); the peers' run below uses it.
export RUST_LOG=${BENCH_RUST_LOG:-warn}
"$bin" migrate >/dev/null

urls=()
for i in $(seq 1 "$instances"); do
  port=$((18070 + 10 * i))
  LATCHKEY_LISTEN=127.0.0.1:$port LATCHKEY_ADMIN_LISTEN=127.0.0.1:$((port + 1)) \
    "$bin" serve > "$work/serve-$i.log" 2>&1 &
  pids+=($!)
  urls+=("http://127.0.0.1:$port")
done
for url in "${urls[@]}"; do
  for _ in $(seq 1 100); do curl -sf "$url/health/alive" >/dev/null && break; sleep 0.1; done
done
python3 bench/seed.py "http://127.0.0.1:18081" 1000 1

# The kernel's high-water mark counts the memory-mapped database pages
# (page cache the process shares); a sampler keeps the peak of the
# process's own (anonymous) memory beside it.
anon_peak=$work/anon-peak
echo 0 > "$anon_peak"
(
  while sleep 0.2; do
    peak=$(cat "$anon_peak")
    total=0
    for p in "${pids[@]}"; do
      kb=$(awk '/RssAnon/ {print $2}' "/proc/$p/status" 2>/dev/null) || exit 0
      total=$((total + ${kb:-0}))
    done
    if [ "$total" -gt "$peak" ]; then peak=$total; echo "$peak" > "$anon_peak"; fi
  done
) &
pids_sampler=$!
trap 'kill $pids_sampler 2>/dev/null || true; cleanup' EXIT

peak_rss() {
  local total=0
  for p in "${pids[@]}"; do
    total=$((total + $(awk '/VmHWM/ {print $2}' "/proc/$p/status")))
  done
  echo "$((total / 1024)) MB (anon $(($(cat "$anon_peak") / 1024)) MB)"
}

declare -A RPS P99 OK DUR
# wrk's latency as milliseconds.
as_ms() { python3 -c "import sys; v = sys.argv[1]; print({'us': 0.001, 'ms': 1, 's': 1000}[v.lstrip('0123456789.')] * float(v.rstrip('usm')))" "$1"; }

run() { # name script path [connections]
  local name=$1 script=$2 path=$3 out rps p50 p99
  local conns=$((${4:-64} / instances))
  local files=() loaders=()
  local parts=()
  if [ -n "${BENCH_FLOWS:-}" ]; then
    # Each instance's loader gets its own share of the one-use flows.
    split -n "l/$instances" -d "$BENCH_FLOWS" "$BENCH_FLOWS.part."
    parts=("$BENCH_FLOWS".part.*)
  fi
  local i=0
  for url in "${urls[@]}"; do
    f=$(mktemp); files+=("$f")
    BENCH_FLOWS=${parts[$i]:-} wrk -t1 -c"$conns" -d"${run_for:-$duration}" --latency -s "bench/$script" "$url$path" > "$f" &
    loaders+=($!)
    i=$((i + 1))
  done
  wait "${loaders[@]}"
  rps=0
  for f in "${files[@]}"; do
    rps=$(python3 -c "print(round($rps + float('$(awk '/Requests\/sec/ {print $2}' "$f")')))")
  done
  p50=$(awk '/ 50%/ {print $2}' "${files[0]}")
  p99=$(awk '/ 99%/ {print $2}' "${files[0]}")
  local line ok
  ok=$(awk '/^succeeded/ {s += $2} END {if (NR) print s}' "${files[@]}")
  line=$(printf '%-10s %-9s x%s  %8s req/s  p50 %8s  p99 %8s  peak RSS %s%s' \
    "$name" "$backend" "$instances" "$rps" "$p50" "$p99" "$(peak_rss)" "${ok:+  (${ok} succeeded)}")
  echo "$line"
  echo "$(date -u +%FT%TZ) $line" >> bench/results.txt
  RPS[$name]=$rps
  P99[$name]=$(as_ms "$p99")
  OK[$name]=${ok:-}
  DUR[$name]=$(python3 -c "import re; print(float(re.sub('[^0-9.]', '', '${run_for:-$duration}')))")
}

scenarios=" ${BENCH_SCENARIOS:-alive start session jwt login verify reset} "
wants() { [[ $scenarios == *" $1 "* ]]; }
# The HTTP ceiling of this binary: the cheapest route, nothing behind it.
wants alive && run alive alive.lua /health/alive
wants start && run start start.lua /api/auth/recovery/start
# Session checks, with the session token and with the JWT (whose session is
# still read, so a logout takes effect at once).
# The start flood leaves the courier with mail to write for some seconds
# (4,630 of 36,966 files were written during a 10 s session scenario that
# followed it at once): the session checks wait until the mail directory
# stops growing, so they are measured alone, as alive was.
source bench/quiet_courier.sh
# The HTTP ceiling moves with the machine from minute to minute (58,503
# and 66,968 req/s in two suites half an hour apart: BENCHMARKS.md,
# 2026-12-06, eighth sitting), so the session checks are compared with the
# mean of two alive floods run just before and just after them.
declare -a ALIVE_AROUND=()
alive_around() {
  run alive-around alive.lua /health/alive > /dev/null
  ALIVE_AROUND+=("${RPS[alive-around]}")
}
if wants session || wants jwt; then
  python3 bench/sessions.py "${urls[0]}" 200 "$work/sessions.txt"
  quiet_courier "$work/mail" 0.5 240
  export BENCH_SESSIONS=$work/sessions.txt
  alive_around
  wants session && BENCH_CREDENTIAL=token run session session.lua /api/auth/session
  wants jwt && BENCH_CREDENTIAL=jwt run jwt session.lua /api/auth/session
  alive_around
  echo "alive around the session checks: ${ALIVE_AROUND[0]} and ${ALIVE_AROUND[1]} req/s"
fi
# The Argon2 ceiling moves with the machine's load from minute to minute
# (by 15 % within one sitting: BENCHMARKS.md, 2026-12-06, fifth sitting):
# each hashing scenario is compared with the mean of a ceiling measured
# just before it and one just after.
declare -A CEIL CEILS
hash_ceiling() { # scenario; call before and after it
  local now
  now=$(./target/release/examples/argon2_ceiling | sed -E 's/.*ceiling ([0-9.]+) verifications.*/\1/')
  CEILS[$1]="${CEILS[$1]:+${CEILS[$1]}, }$now"
  CEIL[$1]=$(python3 -c "v = [${CEILS[$1]}]; print(round(sum(v) / len(v)))")
}
if wants login; then
  hash_ceiling login
  run login login.lua /api/auth/login "$hash_connections"
  hash_ceiling login
fi

# Verify and reset need live flows with their codes: accounts without a
# password (bench-1000 …) get flows, and bench/flows.py reads the codes the
# courier mailed. Each flow is used once.
if wants verify || wants reset; then
  python3 bench/seed.py "http://127.0.0.1:18081" "$((verify_flows + reset_flows))" 0 1000
fi
if wants verify; then
  python3 bench/flows.py "${urls[0]}" "$work/mail" cookie 1000 "$verify_flows" "$work/verify.txt"
  # Short, so the flows last: wrk stops a loader that has used them all up
  # but still divides by the whole duration (then the figure is a floor).
  BENCH_FLOWS=$work/verify.txt run_for=${BENCH_VERIFY_DURATION:-3s} run verify verify.lua /api/auth/recovery/verify
fi
if wants reset; then
  python3 bench/flows.py "${urls[0]}" "$work/mail" token "$((1000 + verify_flows))" "$reset_flows" "$work/reset.txt"
  hash_ceiling reset
  # The target is the peak under the reset flood itself: the kernel's
  # high-water mark (and the sampler's) start over here (`clear_refs` 5).
  for p in "${pids[@]}"; do echo 5 > "/proc/$p/clear_refs"; done
  echo 0 > "$anon_peak"
  BENCH_FLOWS=$work/reset.txt run reset confirm.lua /v2/auth/recovery/confirm "$hash_connections"
  hash_ceiling reset
fi

# The peak memory since the start, or since the reset flood began when it ran
# (before the peers' run stops the servers).
rss=$(for p in "${pids[@]}"; do awk '/VmHWM/ {print $2}' "/proc/$p/status" 2>/dev/null; done | awk '{s += $1} END {print int(s / 1024)}')

# better-auth's request-password-reset and latchkey's start through the
# peers' own harness: the same wrk load (2 threads, 64 connections, 3 runs),
# one after the other in this sitting.
peer_ratio=""
if [ -n "${BENCH_PEERS:-}" ]; then
  # BENCH_PEERS=DIR reuses a copy already set up; any other value makes one.
  if [ -d "$BENCH_PEERS/better-auth/node_modules" ]; then
    peers=$(realpath "$BENCH_PEERS")
  else
    peers=$work/peers
    cp -r ../shared/peers/. "$peers"
    (cd "$peers" && ./setup-better-auth.sh > "$work/peers-setup.log" 2>&1)
  fi
  rm -rf "$peers/results"
  kill "${pids[@]}" 2>/dev/null || true
  # better-auth runs before and after latchkey, and latchkey is compared
  # with the mean of the two: the machine's speed drifts within minutes
  # (better-auth read 1,198 and 991 req/s in two suites of one sitting).
  (cd "$peers" && WARMUP=5 DURATION=10 RUNS=3 ./bench.sh better-auth load > "$work/peers-ba.log" 2>&1)
  # The peers' latchkey runs as the harness starts it: default logging (an
  # access line per request), not this script's RUST_LOG=warn. The two
  # measured the same for starts (BENCHMARKS.md, 2026-12-06, fifth sitting).
  (cd "$peers" && env -u RUST_LOG LK_BIN=$bin_abs WARMUP=5 DURATION=10 RUNS=3 ./bench.sh latchkey load > "$work/peers-lk.log" 2>&1)
  rm -rf "$peers/results-after"
  (cd "$peers" && RESULTS=results-after WARMUP=5 DURATION=10 RUNS=3 ./bench.sh better-auth load > "$work/peers-ba-after.log" 2>&1)
  ba_before=$(awk '/^mean/ {print $2}' "$peers/results/better-auth/load/summary.txt")
  ba_after=$(awk '/^mean/ {print $2}' "$peers/results-after/better-auth/load/summary.txt")
  ba=$(python3 -c "print(round(($ba_before + $ba_after) / 2, 1))")
  lk=$(awk '/^mean/ {print $2}' "$peers/results/latchkey/load/summary.txt")
  lk_p99=$(awk '/^mean/ {print $4}' "$peers/results/latchkey/load/summary.txt")
  line="peers: better-auth request-password-reset $ba req/s ($ba_before before, $ba_after after), latchkey start $lk req/s (p99 $lk_p99 ms)"
  echo "$line"
  echo "$(date -u +%FT%TZ) $line" >> bench/results.txt
  peer_ratio=$(python3 -c "print(round($lk / $ba, 1))")
fi

# Each target of issue 13, with its verdict (only those this run measured).
verdict() { # description measured target-test
  local ok
  ok=$(python3 -c "print('met' if $3 else 'MISSED')")
  printf '  %-58s %-22s %s\n' "$1" "$2" "$ok"
}
echo "targets ($backend x$instances):"
if [ -n "$peer_ratio" ]; then
  verdict "start >= 7.2x better-auth (peers harness)" "${peer_ratio}x" "$peer_ratio >= 7.2"
fi
if [ -n "${P99[start]:-}" ]; then
  verdict "start p99 < 10 ms at 64 connections" "${P99[start]} ms" "${P99[start]} < 10"
fi
if [ -n "${RPS[verify]:-}" ] && [ -n "${RPS[start]:-}" ]; then
  v=$(python3 -c "print(round(${OK[verify]} / ${DUR[verify]}))")
  # Flows all used before the time was up: the rate is only a floor, and
  # a floor under the line says nothing (raise BENCH_VERIFY_FLOWS).
  floor=""
  [ "${OK[verify]}" -ge "$((verify_flows * 99 / 100))" ] && floor=" (a floor: all flows used)"
  met=$(python3 -c "print($v >= 0.5 * ${RPS[start]})")
  if [ -n "$floor" ] && [ "$met" = False ]; then
    printf '  %-58s %-22s %s\n' "verify >= 50% of start$floor" "$v/${RPS[start]} req/s" "not measured"
  else
    verdict "verify >= 50% of start$floor" "$v/${RPS[start]} req/s" "$met"
  fi
fi
if [ "${#ALIVE_AROUND[@]}" -eq 2 ]; then
  alive_mean=$(( (ALIVE_AROUND[0] + ALIVE_AROUND[1]) / 2 ))
  for s in session jwt; do
    if [ -n "${RPS[$s]:-}" ]; then
      verdict "session check ($s) >= 50% of /health/alive around it" "${RPS[$s]}/$alive_mean req/s" \
        "${RPS[$s]} >= 0.5 * $alive_mean"
    fi
  done
fi
for s in login reset; do
  if [ -n "${OK[$s]:-}" ]; then
    v=$(python3 -c "print(round(${OK[$s]} / ${DUR[$s]}, 1))")
    verdict "$s >= 90% of the Argon2 ceiling around it (successes/s)" "$v/${CEIL[$s]} (${CEILS[$s]})" "$v >= 0.9 * ${CEIL[$s]}"
  fi
done
if [ -n "$rss" ] && [ "$rss" -gt 0 ]; then
  span="the whole run"
  wants reset && span="the reset flood"
  verdict "peak RSS < 150 MB ($span)" "$rss MB (anon $(($(cat "$anon_peak") / 1024)) MB)" "$rss < 150"
fi
