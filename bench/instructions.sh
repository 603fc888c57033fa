#!/usr/bin/env bash
# Instructions per request, counted by valgrind's callgrind (Debian package
# `valgrind`): user-space instructions the server runs for one
# GET /health/alive, one session check with X-Session-Token and one with a
# Bearer JWT, and (BENCH_KINDS="start") one recovery start, half for known
# accounts, with the courier's delivery of its mail. Unlike req/s on a
# shared machine, the count barely moves from run to run, so it tells a
# small change from noise.
#
#   bash bench/instructions.sh                     # this checkout's release build
#   bash bench/instructions.sh path/to/latchkey 2000
#   BENCH_KINDS="start" BENCH_LOG=info bash bench/instructions.sh   # with the access log
#   (starts run with the start limit off; BENCH_MAX_STARTS=1000000 keeps it on, never reached)
#
# Notes: callgrind runs the server about 50 times slower, on one thread at a
# time; it counts no kernel work (syscalls, page faults) and no waiting. Its
# CPU lacks SHA extensions, so SHA-256 runs the portable code: hashing counts
# for more here than on the machine itself.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "valgrind is missing: apt-get install valgrind" >&2; exit 1; }
if [ -z "${1:-}" ]; then cargo build --release --quiet --bin latchkey; fi
bin=$(realpath "${1:-./target/release/latchkey}")
n=${2:-2000}
work=$(mktemp -d)
pid=""
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"' EXIT
port=${BENCH_PORT:-18290}
export LATCHKEY_DATABASE_URL=sqlite://$work/latchkey.db LATCHKEY_RATE_LIMIT__IP_PER_MINUTE=0 LATCHKEY_RECOVERY__MAX_STARTS_PER_HOUR=${BENCH_MAX_STARTS:-0} \
  LATCHKEY_COURIER__MAIL_DIR=$work/mail RUST_LOG=${BENCH_LOG:-warn} \
  LATCHKEY_LISTEN=127.0.0.1:$port LATCHKEY_ADMIN_LISTEN=127.0.0.1:$((port + 1))
up() { for _ in $(seq 1 600); do curl -sf "http://127.0.0.1:$port/health/alive" >/dev/null && return; sleep 0.2; done; exit 1; }

# Accounts and their sessions, made at full speed (Argon2 under valgrind is slow).
"$bin" migrate >/dev/null
"$bin" serve > "$work/serve.log" 2>&1 & pid=$!
up
python3 bench/seed.py "http://127.0.0.1:$((port + 1))" 50 1 >/dev/null
python3 bench/sessions.py "http://127.0.0.1:$port" 50 "$work/sessions.txt"
kill "$pid"; wait "$pid" 2>/dev/null || true

valgrind --tool=callgrind --callgrind-out-file="$work/cg.%p" "$bin" serve > "$work/valgrind.log" 2>&1 & pid=$!
up
load() { python3 bench/requests.py "$port" "$1" "$2" "$work/sessions.txt"; }
kinds=${BENCH_KINDS:-alive token jwt}
source bench/quiet_courier.sh
for what in $kinds; do load "$what" 300; done # warm up
quiet_courier "$work/mail" 2 600
for what in $kinds; do
  callgrind_control -z "$pid" >/dev/null 2>&1
  curl -s "http://127.0.0.1:$port/health/alive" >/dev/null # lets callgrind act on the command
  sleep 0.5
  load "$what" "$n"
  [ "$what" = start ] && quiet_courier "$work/mail" 2 600
  callgrind_control -d "$what" "$pid" >/dev/null 2>&1
  curl -s "http://127.0.0.1:$port/health/alive" >/dev/null
  sleep 1
  out=$(ls -t "$work"/cg."$pid".* | head -1)
  total=$(awk '/^totals:/ {print $2}' "$out")
  printf '%-6s %8d instructions per request\n' "$what" $((total / n))
  if [ -n "${BENCH_CALLGRIND_KEEP:-}" ]; then cp "$out" "$BENCH_CALLGRIND_KEEP-$what.out"; fi
done
