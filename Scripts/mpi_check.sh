#!/usr/bin/env bash
# Data-parallel training over MPI (issue #17), checked against one process:
#   1. MNIST (convnet, 2,048 images, batch 128): 2 ranks vs 1 process, the largest weight difference
#      (the gradient sums differ in rounding only; Adam amplifies it a little) and the test accuracy;
#   2. the digits detector (yolo-digits.cfg, batch 16, 12 iterations; one process with 2
#      subdivisions, 2 ranks with the cfg's 1 raised to 2): with one subdivision per rank the
#      sums are the same additions, so the weights must be bitwise equal;
#   3. a 2-rank run stopped after 6 iterations and resumed to 12 equals the uninterrupted one;
#   4. a rank killed mid-training ends the job within 30 s, with a message naming the rank, and the
#      last checkpoint still loads.
# Needs Open MPI (libopenmpi-dev, openmpi-bin). Usage: Scripts/mpi_check.sh [BUILD_PATH]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD="${1:-$PWD/.build/mpi}"
swift build -c release --traits MPI --product ocelli --build-path "$BUILD"
OCELLI="$BUILD/release/ocelli"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
# mpirun refuses root unless told (CI containers run as root); --oversubscribe: CI may see 1 slot.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
MPIRUN=(mpirun -np 2)
fail() { echo "mpi_check: FAILED: $*" >&2; exit 1; }
# A number field of the JSON line the command ends with (no Python or jq needed).
field() { tail -n 1 | grep -o "\"$1\":[-0-9.e+]*" | cut -d: -f2; }

echo "== MNIST convnet: 1 process vs 2 ranks"
"$OCELLI" mnist --model convnet --limit 2048 --epochs 1 --threads 1 --verbose 0 --save "$WORK/m1" --json > "$WORK/m1.json"
"${MPIRUN[@]}" "$OCELLI" mnist --model convnet --limit 2048 --epochs 1 --threads 1 --verbose 0 --save "$WORK/m2" --json > "$WORK/m2.json"
a1=$(field test_accuracy < "$WORK/m1.json"); a2=$(field test_accuracy < "$WORK/m2.json"); ranks=$(field ranks < "$WORK/m2.json")
echo "test accuracy: 1 process $a1, $ranks ranks $a2"
[ "$ranks" = 2 ] || fail "the MPI run reports $ranks ranks"
awk -v a="$a1" -v b="$a2" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 0.002) }' || fail "test accuracy $a1 vs $a2"
"$OCELLI" debug compare-weights "$WORK/m1" "$WORK/m2" --tolerance 1e-3 || fail "MNIST weights differ by more than 1e-3"

echo "== digits detector: 1 process vs 2 ranks (one subdivision each: bitwise equal)"
"$OCELLI" datasets digits --split train --count 64 --out "$WORK/digits" > /dev/null
"$OCELLI" train --cfg yolo-digits --data "$WORK/digits" --val-split none --subdivisions 2 --max-batches 12 --threads 1 \
    --backup "$WORK/d1" --json 2> /dev/null > "$WORK/d1.json"
# The cfg's subdivisions=1 is raised to 2 so that the ranks share each iteration.
"${MPIRUN[@]}" "$OCELLI" train --cfg yolo-digits --data "$WORK/digits" --val-split none --max-batches 12 --threads 1 \
    --backup "$WORK/d2" --json 2> "$WORK/d2.err" > "$WORK/d2.json"
grep -q "raised from 1" "$WORK/d2.err" || { cat "$WORK/d2.err"; fail "the subdivisions were not raised for 2 ranks"; }
echo "images/s: 1 process $(field images_per_second < "$WORK/d1.json"), 2 ranks $(field images_per_second < "$WORK/d2.json")"
"$OCELLI" debug compare-weights "$WORK/d1/yolo-digits_final.safetensors" "$WORK/d2/yolo-digits_final.safetensors" --tolerance 0 \
    || fail "the detector's weights differ"
cmp "$WORK/d1/yolo-digits_final.weights" "$WORK/d2/yolo-digits_final.weights" || fail "the .weights files differ"

echo "== resumed on 2 ranks = uninterrupted"
"${MPIRUN[@]}" "$OCELLI" train --cfg yolo-digits --data "$WORK/digits" --val-split none --max-batches 6 --threads 1 \
    --backup "$WORK/r" > /dev/null 2>&1
"${MPIRUN[@]}" "$OCELLI" train --cfg yolo-digits --data "$WORK/digits" --val-split none --max-batches 12 --threads 1 \
    --backup "$WORK/r" --resume > "$WORK/r.err" 2>&1 || { cat "$WORK/r.err"; fail "the resumed run failed"; }
grep -q "Resuming at iteration 6" "$WORK/r.err" || { cat "$WORK/r.err"; fail "the run did not resume at iteration 6"; }
"$OCELLI" debug compare-weights "$WORK/d2/yolo-digits_final.safetensors" "$WORK/r/yolo-digits_final.safetensors" --tolerance 0 \
    || fail "a resumed run differs from an uninterrupted one"

echo "== a rank killed mid-training"
"${MPIRUN[@]}" "$OCELLI" train --cfg yolo-digits --data "$WORK/digits" --val-split none --subdivisions 2 --max-batches 100000 \
    --map-every 2 --threads 1 --backup "$WORK/k" > "$WORK/k.out" 2> "$WORK/k.err" &
job=$!
for _ in $(seq 1 600); do [ -f "$WORK/k/yolo-digits_last.weights" ] && break; sleep 0.1; done
[ -f "$WORK/k/yolo-digits_last.weights" ] || { kill $job 2>/dev/null; fail "no checkpoint was written"; }
victim=""
for pid in $(pgrep -f "backup $WORK/k" || true); do
    if tr '\0' '\n' < "/proc/$pid/environ" 2>/dev/null | grep -qx 'OMPI_COMM_WORLD_RANK=1'; then victim=$pid; fi
done
[ -n "$victim" ] || { kill $job 2>/dev/null; fail "rank 1 not found"; }
start=$(date +%s%N)
kill -9 "$victim"
status=0
for _ in $(seq 1 300); do kill -0 $job 2>/dev/null || break; sleep 0.1; done
if kill -0 $job 2>/dev/null; then kill -9 $job; fail "the job still ran 30 s after rank 1 was killed"; fi
wait $job || status=$?
took=$(awk -v a="$start" -v b="$(date +%s%N)" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')
echo "rank 1 (pid $victim) killed: the job ended in $took s with status $status"
[ "$status" != 0 ] || fail "the job ended with status 0"
grep -q "rank 1" "$WORK/k.err" || { cat "$WORK/k.err"; fail "no message names rank 1"; }
grep -m1 "rank 1" "$WORK/k.err"
"$OCELLI" train --cfg yolo-digits --data "$WORK/digits" --val-split none --max-batches 1 --threads 1 --backup "$WORK/k2" \
    --weights "$WORK/k/yolo-digits_last.weights" > /dev/null 2>&1 || fail "the last checkpoint does not load"
echo "mpi_check: passed"
