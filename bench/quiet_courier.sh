# Sourced by bench/run.sh and bench/instructions.sh.
# quiet_courier DIR SECONDS TRIES: returns once the number of files under
# DIR (the courier's mail directory) stayed the same for SECONDS, trying at
# most TRIES times: the courier has written every message it had.
quiet_courier() {
  local dir=$1 interval=$2 tries=$3 before after
  for _ in $(seq 1 "$tries"); do
    before=$(find "$dir" -type f 2>/dev/null | wc -l)
    sleep "$interval"
    after=$(find "$dir" -type f 2>/dev/null | wc -l)
    [ "$before" = "$after" ] && return
  done
}
