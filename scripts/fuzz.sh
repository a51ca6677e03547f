#!/usr/bin/env bash
# scripts/fuzz.sh [SECONDS] - build the libFuzzer targets of fuzz/ with clang (ASan+UBSan,
# MIXPREC_FUZZ=ON) in build-fuzz/ and run each for SECONDS (default $FUZZ_SECONDS, else 30).
#
# Each target starts from a scratch copy of fuzz/corpus/<target>/ (so a run never grows the
# repository), with fuzz/dict/<target>.dict when there is one, and its new inputs are thrown
# away at the end. A target that crashes, leaks,
# times out (-timeout=10) or runs out of memory (-rss_limit_mb=2048) fails the script: it
# names the target and the input that did it, kept under build-fuzz/fuzz-artifacts/<target>/
# (copy it into fuzz/corpus/<target>/ as crash-<what> once the bug is fixed: docs/FUZZING.md).
#
# Environment: FUZZ_SECONDS (seconds per target), FUZZ_BUILD_DIR (default build-fuzz),
# FUZZ_TARGETS (default "safetensors idx yaml_args config launch"), FUZZ_JOBS (parallel build
# jobs, default nproc), CC (default clang).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

seconds=${1:-${FUZZ_SECONDS:-30}}
case "$seconds" in '' | *[!0-9]*) echo "fuzz.sh: SECONDS must be a whole number, not '$seconds'" >&2; exit 2 ;; esac
build=${FUZZ_BUILD_DIR:-build-fuzz}
case "$build" in /*) ;; *) build="$root/$build" ;; esac
targets=${FUZZ_TARGETS:-safetensors idx yaml_args config launch}
jobs=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 2)}
cc=${CC:-clang}
case "$cc" in *clang*) ;; *) cc=clang ;; esac # the gcc of CC=gcc has no libFuzzer

# the longest input each parser is given: a few headers and tensors, an argument file, a config
max_len() {
    case "$1" in
        safetensors) echo 8192 ;;
        idx) echo 4096 ;;
        yaml_args) echo 4096 ;;
        config) echo 8192 ;;
        launch) echo 4096 ;;
        *) echo 4096 ;;
    esac
}

say() { echo "fuzz.sh: $*"; }
start=$(date +%s)

# ---- clang with libFuzzer? --------------------------------------------------------------
if ! command -v "$cc" >/dev/null 2>&1; then
    say "$cc not found; install clang and libclang-rt-14-dev (bash scripts/setup.sh)" >&2
    exit 1
fi
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
printf '#include <stddef.h>\n#include <stdint.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n' >"$probe/p.c"
if ! "$cc" -fsanitize=fuzzer,address,undefined "$probe/p.c" -o "$probe/p" >"$probe/log" 2>&1; then
    say "$cc cannot link libFuzzer (-fsanitize=fuzzer):" >&2
    sed 's/^/    /' "$probe/log" >&2
    say "install libclang-rt-14-dev (bash scripts/setup.sh)" >&2
    exit 1
fi

# ---- build ---------------------------------------------------------------------------------
# A build directory configured for another source tree is removed first (as the Makefile does).
if [ -f "$build/CMakeCache.txt" ] && ! grep -qxF "CMAKE_HOME_DIRECTORY:INTERNAL=$root" "$build/CMakeCache.txt"; then
    say "$build was configured for another source tree; removing it"
    rm -rf "$build"
fi
say "building in $build with $("$cc" --version | head -n 1)"
CC="$cc" cmake -S . -B "$build" -DMIXPREC_FUZZ=ON -DMIXPREC_SANITIZE= -DMIXPREC_OPENMP=OFF \
    -DMIXPREC_BENCH=OFF -DCMAKE_BUILD_TYPE=Debug "-DCMAKE_C_FLAGS_DEBUG=-g -O1" >"$probe/cmake.log" ||
    { cat "$probe/cmake.log"; exit 1; }
grep 'mixprec [0-9]' "$probe/cmake.log" || true
cmake --build "$build" --target fuzz_targets -j "$jobs"
built=$(date +%s)
say "built in $((built - start)) s"

# ---- run -------------------------------------------------------------------------------------
scratch=$(mktemp -d "${TMPDIR:-/tmp}/mixprec-fuzz.XXXXXX")
trap 'rm -rf "$probe" "$scratch"' EXIT
failed=()
for t in $targets; do
    bin="$build/fuzz_$t"
    seeds="fuzz/corpus/$t"
    if [ ! -x "$bin" ] || [ ! -d "$seeds" ]; then
        say "no fuzz_$t or no $seeds" >&2
        failed+=("$t: missing")
        continue
    fi
    art="$build/fuzz-artifacts/$t"
    rm -rf "$art"
    mkdir -p "$art" "$scratch/$t/corpus" "$scratch/$t/tmp"
    cp "$seeds"/* "$scratch/$t/corpus/"
    log="$build/fuzz-$t.log"
    dict=()
    [ -f "fuzz/dict/$t.dict" ] && dict=(-dict="$root/fuzz/dict/$t.dict")
    say "fuzz_$t: ${seconds} s over $(ls "$seeds" | wc -l) inputs of $seeds (log: $log)"
    rc=0
    # TMPDIR: the harness's per-process input file goes to the scratch directory. One
    # malloc over rss_limit_mb (libFuzzer's malloc_limit_mb) counts as running out of memory.
    # timeout(1) guards against a fuzzer that does not stop by itself.
    (cd "$scratch/$t" &&
        TMPDIR="$scratch/$t/tmp" \
        ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
        UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        timeout -k 10 $((seconds + 120)) \
        "$bin" corpus -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
            -max_len="$(max_len "$t")" "${dict[@]}" -artifact_prefix="$art/" -print_final_stats=1 \
            >"$log" 2>&1) || rc=$?
    stats=$(grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "$log" |
        sed 's/^stat:://; s/: */=/' | tr '\n' ' ')
    crash=$(find "$art" -type f | head -n 1)
    if [ "$rc" != 0 ] || [ -n "$crash" ]; then
        what=$(grep -m1 -E 'SUMMARY|ERROR: libFuzzer|invariant broken|runtime error' "$log" || true)
        say "fuzz_$t: FAILED (exit $rc): ${what:-see the log}" >&2
        say "fuzz_$t: input: ${crash:-none written}; log: $log" >&2
        say "fuzz_$t: reproduce: $bin ${crash:-}" >&2
        failed+=("$t: ${crash:-exit $rc}")
    else
        say "fuzz_$t: ok: $stats"
    fi
done

end=$(date +%s)
say "total $((end - start)) s (build $((built - start)) s, fuzzing $((end - built)) s)"
if ((${#failed[@]})); then
    say "FAILED: ${failed[*]}" >&2
    exit 1
fi
say "all targets passed: $targets"
