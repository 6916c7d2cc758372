#!/usr/bin/env bash
# Builds the libFuzzer harnesses and runs each reader's for RUNS inputs (default 1,000,000).
#   Fuzz/run.sh [RUNS] [READER…]        e.g. Fuzz/run.sh 2000 (a smoke run), Fuzz/run.sh 1000000 VOC
# Prints one line per reader: inputs run, crashes (0, or the run stops at the first with its input
# saved as crash-* in the corpus folder), seconds. Needs a Swift toolchain with libFuzzer (Linux).
set -euo pipefail
cd "$(dirname "$0")"
RUNS=${1:-1000000}; shift || true
READERS=("$@")
[ ${#READERS[@]} -gt 0 ] || READERS=(DarknetCfg DarknetWeights DarknetData IDX SafeTensors ModelJSON Image VOC YOLO COCO Detections)
BUILD=${FUZZ_BUILD:-/tmp/ocelli-fuzz-build}
CORPUS=${FUZZ_CORPUS:-/tmp/ocelli-fuzz-corpus}
# The C targets (the JPEG/PNG bridges, the kernels) are instrumented too, for coverage.
swift build -c release --build-path "$BUILD" -Xswiftc -sanitize=fuzzer -Xswiftc -parse-as-library -Xcc -fsanitize=fuzzer-no-link >&2

seeds() {
    case $1 in
        DarknetCfg) echo ../Data/cfg ;;
        Image) echo ../Tests/OcelliVisionTests/Fixtures ../Data/images ;;
        VOC) echo ../Tests/OcelliVisionTests/Fixtures/datasets/voc/Annotations ;;
        YOLO) echo Seeds/YOLO ../Tests/OcelliVisionTests/Fixtures/datasets/yolo/labels ;;
        COCO) echo ../Tests/OcelliVisionTests/Fixtures/datasets/coco/annotations ../Tests/OcelliDetectionTests/Fixtures/detection ;;
        *) echo "Seeds/$1" ;;
    esac
}

# Let libFuzzer, not the Swift runtime's backtracer, handle a crash: it saves the input.
export SWIFT_BACKTRACE=enable=no
status=0
for r in "${READERS[@]}"; do
    mkdir -p "$CORPUS/$r"
    start=$(date +%s)
    log="$CORPUS/$r.log"
    # -rss_limit_mb: the readers' limits (at most 2^28 weights, 1 GiB files) fit in 4 GiB.
    if "$BUILD/release/Fuzz$r" "$CORPUS/$r" $(seeds "$r") -runs="$RUNS" -max_len=65536 -rss_limit_mb=4096 \
            -timeout=30 -artifact_prefix="$CORPUS/$r/" -print_final_stats=1 >"$log" 2>&1; then
        crashes=0
    else
        crashes=1; status=1
    fi
    done_runs=$(grep -a -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
    echo "$r: $done_runs inputs, $crashes crashes, $(( $(date +%s) - start )) s$([ $crashes = 0 ] || echo "; see $log")"
done
exit $status
