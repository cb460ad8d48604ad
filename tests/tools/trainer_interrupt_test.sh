#!/bin/sh
# qisa-train never loses a run: Ctrl-C (SIGINT) checkpoints (into
# OUT.checkpoint without --checkpoint) and the run resumes from there; a run
# killed outright (SIGKILL) still has its --save-every checkpoint.
#   trainer_interrupt_test.sh QISA_TRAIN WORKDIR
set -u
train=$1
work=$2
rm -rf "$work" && mkdir -p "$work"
common="--n-layer 1 --batch 32 --eval-every 1000 --eval-windows 8 --threads 1 --quiet"

# Waits (at most 60 s) until the CSV log has more than $2 lines.
wait_lines() {
  i=0
  while [ "$( (wc -l < "$1") 2>/dev/null || echo 0)" -le "$2" ]; do
    i=$((i + 1))
    [ $i -gt 600 ] && { echo "no progress in $1"; return 1; }
    sleep 0.1
  done
}

$train $common --steps 1000000 --out "$work/int.qisa" --log "$work/int.csv" 2>"$work/int.err" &
pid=$!
wait_lines "$work/int.csv" 3 || { kill -9 $pid; exit 1; }
kill -INT $pid
wait $pid
rc=$?
[ $rc -eq 130 ] || { echo "SIGINT: exit status $rc, expected 130"; cat "$work/int.err"; exit 1; }
grep -q "interrupted at step" "$work/int.err" || { echo "no interruption message"; cat "$work/int.err"; exit 1; }
[ -f "$work/int.qisa.checkpoint/state.txt" ] || { echo "no checkpoint in int.qisa.checkpoint"; exit 1; }
step=$(sed -n 's/.*interrupted at step \([0-9]*\).*/\1/p' "$work/int.err")
$train $common --steps $((step + 2)) --checkpoint "$work/int.qisa.checkpoint" --resume --out "$work/int.qisa" \
  2>"$work/resume.err" || { echo "resume failed"; cat "$work/resume.err"; exit 1; }
grep -q "resuming at step $step of $((step + 2))" "$work/resume.err" || { echo "no resume message"; cat "$work/resume.err"; exit 1; }
[ -f "$work/int.qisa" ] || { echo "the resumed run wrote no model"; exit 1; }

$train $common --steps 1000000 --save-every 2 --checkpoint "$work/kill" --log "$work/kill.csv" 2>/dev/null &
pid=$!
wait_lines "$work/kill.csv" 5 || { kill -9 $pid; exit 1; }
kill -KILL $pid
wait $pid 2>/dev/null
[ -f "$work/kill/state.txt" ] || { echo "--save-every 2: no checkpoint after SIGKILL"; exit 1; }
# On a terminal the progress line shows no "eval nan" before the first
# evaluation (script(1) gives the run a pseudo-terminal).
if command -v script >/dev/null 2>&1; then
  script -qec "$train --n-layer 1 --batch 32 --eval-every 1000 --eval-windows 8 --threads 1 --steps 3 --out $work/tty.qisa" \
    "$work/tty.log" >/dev/null 2>&1 || { echo "tty run failed"; cat "$work/tty.log"; exit 1; }
  grep -q "eval nan" "$work/tty.log" && { echo "progress shows 'eval nan'"; exit 1; }
  grep -q "eval - " "$work/tty.log" || { echo "no progress line"; cat "$work/tty.log"; exit 1; }
fi
echo "interrupt test: ok (SIGINT at step $step, resumed; SIGKILL left a --save-every checkpoint)"
