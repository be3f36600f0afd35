#!/usr/bin/env bash
# One command for a session lent a GPU machine: the engine tests (CUDA ones included), nanoGPT's shakespeare_char
# recipe and the fast-gpu-char preset against val 1.47, and decoding speed, in about 9 minutes of wall clock.
#
#   bash bench/gpu_check.sh                  on the GPU machine; logs and figures land in ${OUT:-/tmp/gpu_out}
#   GPU_CHECK_DRY=1 bash bench/gpu_check.sh  here, on the CPU: tiny models and steps, to check the plumbing
#
# Every step has its own time limit and log ($OUT/NAME.log, tee'd to the terminal); a failing step does not stop
# the others. At most 8 files are written under $OUT (the device tool brings back 8). Settings (environment):
#   CORPUS=path         tinyshakespeare.txt (default: ../shared/corpora/, then shared/corpora/ under the repo root;
#                       only a shared/ folder inside the checkout travels to the GPU machine)
#   GPU_CHECK_STEPS     steps to run, in order (default: "env tests nanogpt fast decode")
#   GPU_CHECK_BUDGET    seconds for the whole script (default 540); a step never runs past what is left
#   NANOGPT_MAX_TIME, FAST_MAX_TIME   training seconds per preset (default 150 each), e.g. 480 to chase the target
#   PYTHON              the interpreter (default: python3, which holds torch on the GPU machine)
set -u
cd "$(dirname "$0")/.." || exit 2
OUT="${OUT:-/tmp/gpu_out}"
mkdir -p "$OUT"
export PY="${PYTHON:-$(command -v python3 || command -v python)}"
DRY="${GPU_CHECK_DRY:-0}"
STEPS="${GPU_CHECK_STEPS:-env tests nanogpt fast decode}"
BUDGET="${GPU_CHECK_BUDGET:-540}"
export PYTHONUNBUFFERED=1
START=$SECONDS
SUMMARY="$OUT/summary.txt"
: >"$SUMMARY"

note() { echo "$*" | tee -a "$SUMMARY"; }

# run NAME SECONDS CMD...: CMD under `timeout`, output tee'd to $OUT/NAME.log, outcome appended to the summary
run() {
    local name=$1 want=$2 left limit t0 rc status
    shift 2
    left=$((BUDGET - (SECONDS - START)))
    limit=$((want < left ? want : left))
    if ((limit < 15)); then
        note "$(printf '%-8s SKIPPED  (%ss of the %ss budget left)' "$name" "$left" "$BUDGET")"
        return
    fi
    echo "=== $name (limit ${limit}s): $*"
    t0=$SECONDS
    timeout -k 10 "$limit" "$@" 2>&1 | tee "$OUT/$name.log"
    rc=${PIPESTATUS[0]}
    case $rc in
        0) status=ok ;;
        124 | 137) status=TIMEOUT ;;
        *) status="FAILED rc=$rc" ;;
    esac
    note "$(printf '%-8s %-14s %4ss  %s' "$name" "$status" "$((SECONDS - t0))" "$OUT/$name.log")"
}

CORPUS_FILE=""
for c in "${CORPUS:-}" ../shared/corpora/tinyshakespeare.txt shared/corpora/tinyshakespeare.txt; do
    if [ -n "$c" ] && [ -f "$c" ]; then CORPUS_FILE=$c; break; fi
done

if [ "$DRY" = 1 ]; then  # the same commands on the CPU with models and runs small enough for a minute
    DEVICE=cpu
    TESTS=(tests/engine/test_gpu_paths_on_cpu.py)
    TINY=(--threads 1 --set max_steps=6 --set eval_interval=3 --set steps_per_yield=3 --set n_layer=1
          --set n_head=2 --set n_embd=32 --set block_size=32 --set batch_size=4 --set compile=false)
    DECODE=(--tokens 4 --past 2 --beam-width 2)
else
    DEVICE=cuda
    # the files with CUDA tests first, so a time-out still leaves their results; then the rest of tests/engine
    TESTS=(tests/engine/test_gpu_paths_on_cpu.py tests/engine/test_train.py tests/engine/test_decode.py)
    for f in tests/engine/test_*.py; do
        [[ " ${TESTS[*]} " == *" $f "* ]] || TESTS+=("$f")
    done
    TINY=()
    DECODE=()
fi

note "gpu_check $(date -u +%FT%TZ) dry=$DRY device=$DEVICE python=$PY steps='$STEPS' budget=${BUDGET}s"
note "corpus: ${CORPUS_FILE:-NOT FOUND}"

env_info() {
    nvidia-smi || echo "(no nvidia-smi)"
    "$PY" - <<'EOF'
import platform, torch
print(f"python {platform.python_version()}, torch {torch.__version__}, CUDA {torch.version.cuda}, "
      f"cuDNN {torch.backends.cudnn.version()}")
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    print(f"{p.name}: {p.total_memory / 2**30:.1f} GiB, {p.multi_processor_count} SMs, capability "
          f"{p.major}.{p.minor}, bf16 {torch.cuda.is_bf16_supported()}, flash SDPA {torch.backends.cuda.flash_sdp_enabled()}")
else:
    print("torch sees no CUDA device")
EOF
}

train() {  # train NAME PRESET MAX_TIME: one preset against val 1.47 on the corpus
    local name=$1 preset=$2 max_time=$3
    if [ -z "$CORPUS_FILE" ]; then
        echo "error: tinyshakespeare.txt not found (tried \$CORPUS, ../shared/corpora/ and shared/corpora/ from $(pwd));" \
             "copy it to shared/corpora/ inside the repo, which travels to the GPU machine" | tee "$OUT/$name.log"
        note "$(printf '%-8s %-14s' "$name" "FAILED no corpus")"
        return
    fi
    # TORCH_LOGS puts any recompile or graph break of the compiled model into the log
    run "$name" $((max_time + 30)) env TORCH_LOGS="recompiles,graph_breaks" "$PY" bench/train_to_target.py \
        --preset "$preset" --device "$DEVICE" --target 1.47 --max-time "$max_time" --corpus "$CORPUS_FILE" ${TINY[@]+"${TINY[@]}"}
}

for step in $STEPS; do
    case $step in
        env) run env 30 bash -c "$(declare -f env_info); env_info" ;;
        tests) run tests 130 "$PY" -m pytest -q -p no:cacheprovider --maxfail=5 -rfEs --durations=10 "${TESTS[@]}" ;;
        nanogpt) train nanogpt nanogpt-char "${NANOGPT_MAX_TIME:-150}" ;;
        fast) train fast fast-gpu-char "${FAST_MAX_TIME:-150}" ;;
        decode) run decode 60 "$PY" bench/decode_speed.py --device "$DEVICE" ${DECODE[@]+"${DECODE[@]}"} ;;
        *) note "unknown step '$step' (steps: env tests nanogpt fast decode)" ;;
    esac
done

{
    echo "--- figures"
    grep -h -E "^[0-9]+ (passed|failed)|^(FAILED|ERROR) " "$OUT/tests.log" 2>/dev/null
    for name in nanogpt fast; do
        [ -f "$OUT/$name.log" ] && grep -h -E "^preset|^device|reached val|not reached|^throughput|^error" "$OUT/$name.log"
        [ -f "$OUT/$name.log" ] && echo "$name: $(grep -c "Recompiling" "$OUT/$name.log") recompile(s)," \
            "$(grep -c "Graph break" "$OUT/$name.log") graph break(s) in the log"
    done
    [ -f "$OUT/decode.log" ] && grep -h -E "^device|KV cache|no cache|past the window|top-k" "$OUT/decode.log"
    echo "total ${SECONDS}s wall"
} | tee -a "$SUMMARY"
! grep -q -E "FAILED|TIMEOUT|SKIPPED" "$SUMMARY"  # exit 1 unless every step ran and passed
