#!/usr/bin/env bash
# Builds every fuzz target with libFuzzer on the stable toolchain and runs each for a bounded
# time. Usage: fuzz/run.sh [seconds-per-target (default 30)] [target ...]
#
# The build uses the flags `cargo fuzz build --sanitizer none --debug-assertions` uses, so no
# nightly and no cargo-fuzz are needed; where cargo-fuzz is installed the same layout works
# with it too: `cargo fuzz run <target> -s none fuzz/seeds/<target>` from the repository root.
#
# Each target starts from the committed seeds (fuzz/seeds/<target>) and its working corpus
# (fuzz/corpus/<target>, kept between runs, not committed). A crash, failed assertion, leak,
# timeout or out-of-memory is saved under fuzz/artifacts/<target>/, its path printed, and the
# script exits non-zero after running the remaining targets.
set -euo pipefail

cd "$(dirname "$0")"
seconds=${1:-30}
shift || true
if ! [[ $seconds =~ ^[0-9]+$ ]] || ((seconds < 1)); then
    echo "usage: fuzz/run.sh [seconds-per-target] [target ...]" >&2
    exit 2
fi
all_targets=(config headers form whatsapp_body base_string timestamp guard_body path_view providers etcd_answer)
targets=("${@:-${all_targets[@]}}")

host=$(rustc -vV | sed -n 's/^host: //p')
# An explicit --target keeps these flags off build scripts and proc-macros, as cargo-fuzz does.
export RUSTFLAGS="-Cpasses=sancov-module \
-Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
-Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares \
--cfg fuzzing -Cdebug-assertions -Coverflow-checks"
unset CARGO_TARGET_DIR CARGO_BUILD_TARGET
echo "== building ${#targets[@]} fuzz targets for $host (release, sancov, debug assertions)"
bins=()
for target in "${targets[@]}"; do
    bins+=(--bin "$target")
done
cargo build --release --target "$host" --target-dir target "${bins[@]}"

logs=target/fuzz-logs
mkdir -p "$logs"
failed=()
summary=()
for target in "${targets[@]}"; do
    bin=target/$host/release/$target
    corpus=corpus/$target
    artifacts=artifacts/$target
    mkdir -p "$corpus" "$artifacts"
    before=$(find "$artifacts" -type f | sort)
    options=(-max_total_time="$seconds" -timeout=25 -rss_limit_mb=2048 -print_final_stats=1
        -artifact_prefix="$artifacts/")
    if [[ -f dicts/$target.dict ]]; then
        options+=(-dict="dicts/$target.dict")
    fi
    echo "== $target: ${seconds}s, corpus $corpus, seeds seeds/$target"
    status=0
    "$bin" "${options[@]}" "$corpus" "seeds/$target" >"$logs/$target.log" 2>&1 || status=$?
    done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$logs/$target.log" | tail -n 1 || true)
    runs=$(sed -n 's/^stat::number_of_executed_units: //p' "$logs/$target.log" | tail -n 1)
    cov=$(sed -nE 's/.* cov: ([0-9]+) ft: ([0-9]+) corp: ([0-9]+).*/cov=\1 ft=\2 corpus=\3/p' \
        <<<"$done_line")
    rate=$(sed -n 's/^stat::average_exec_per_sec: //p' "$logs/$target.log" | tail -n 1)
    new_artifacts=$(comm -13 <(echo "$before") <(find "$artifacts" -type f | sort) | sed '/^$/d')
    if ((status != 0)) || [[ -n $new_artifacts ]]; then
        failed+=("$target")
        summary+=("$target: FAILED (exit $status) after ${runs:-?} runs")
        echo "!! $target failed (exit $status); last lines of $logs/$target.log:"
        tail -n 40 "$logs/$target.log" | sed 's/^/   /'
        while IFS= read -r artifact; do
            [[ -n $artifact ]] || continue
            echo "!! reproducer: fuzz/$artifact"
            echo "!!   re-run: fuzz/$bin fuzz/$artifact"
        done <<<"$new_artifacts"
    else
        summary+=("$target: ok, ${runs:-?} runs, ${rate:-?} exec/s, ${cov:-no coverage line}")
    fi
done

echo "== summary (${seconds}s per target; logs in fuzz/$logs)"
printf '   %s\n' "${summary[@]}"
if ((${#failed[@]})); then
    echo "== FAILED: ${failed[*]}" >&2
    exit 1
fi
