#!/usr/bin/env bash
# Build the compiled core in debug mode (MICROGRAD_FAST_DEBUG_BUILD=1: -O0 -g3,
# MGF_DEBUG assertions, Cython bounds checks) in a staging copy under build/,
# then run the test suite against it under a memory checker.
#
#   tools/sanitize.sh asan     [pytest args...]  AddressSanitizer + UBSan
#   tools/sanitize.sh valgrind [pytest args...]  valgrind memcheck
#   tools/sanitize.sh debug    [pytest args...]  the debug build alone (arena
#                                                invariants checked in C)
#
# The staging copy (build/asan, build/valgrind) keeps the in-place build of
# the checkout untouched.  Exit status: pytest's, or 1 when the checker
# reported an error.  SAN_CC=clang builds the ASan variant with clang (needs
# Debian's clang and libclang-rt-NN-dev); the default is gcc with libasan.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
MODE=${1:?usage: tools/sanitize.sh asan|valgrind|debug [pytest args...]}
shift
# pytest arguments: the whole suite unless the first one names test files
if [ "${1:-}" != "${1#tests/}" ]; then SUITE=(); else SUITE=(tests); fi

# the interpreter itself, not a wrapper script (valgrind must start python)
PY=$(python3 -c 'import sys; print(sys.executable)')

STAGE=$ROOT/build/$MODE
rm -rf "$STAGE"
mkdir -p "$STAGE"
for f in setup.py pyproject.toml README.md micrograd_fast csrc src tests; do
    [ -e "$f" ] && cp -r "$f" "$STAGE/"
done
find "$STAGE" \( -name '*.so' -o -name '_engine.c' -o -name __pycache__ \) -prune -exec rm -rf {} +

export MICROGRAD_FAST_DEBUG_BUILD=1
export PYTHONMALLOC=malloc  # Python objects (Value handles too) come from malloc, so they are checked
export PYTHONDONTWRITEBYTECODE=1

case "$MODE" in
asan)
    CC=${SAN_CC:-gcc}
    SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
    if [ "$CC" = clang ]; then
        RUNTIME=$(clang -print-file-name=libclang_rt.asan-x86_64.so)
    else
        RUNTIME=$(gcc -print-file-name=libasan.so)
    fi
    [ -f "$RUNTIME" ] || { echo "no ASan runtime for $CC ($RUNTIME)" >&2; exit 2; }
    (cd "$STAGE" && CC=$CC CFLAGS="$SAN" LDFLAGS="$SAN" \
        "$PY" setup.py -q build_ext --inplace >build.log 2>&1) \
        || { tail -30 "$STAGE/build.log"; exit 2; }
    cd "$STAGE"
    # CPython does not free everything at exit: leak reports would be noise
    LD_PRELOAD=$RUNTIME \
    ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        "$PY" -m pytest -q -p no:cacheprovider "${SUITE[@]}" "$@"
    ;;
valgrind)
    (cd "$STAGE" && "$PY" setup.py -q build_ext --inplace >build.log 2>&1) \
        || { tail -30 "$STAGE/build.log"; exit 2; }
    cd "$STAGE"
    LOG=$STAGE/valgrind.log  # one file per process: valgrind.log.<pid>
    set +e
    # --undef-value-errors=no: CPython 3.11 reads the uninitialised digit
    # of a zero-sized int (int.from_bytes(b""), int("0"); hypothesis does
    # both), and the small-int pointer it picks taints the eval loop, so
    # memcheck would report CPython all over.  Addressability checks
    # (invalid reads and writes, use after free, double free) stay on.
    # Hypothesis examples are fewer under valgrind (override by setting
    # MICROGRAD_FAST_FUZZ_EXAMPLES).
    export MICROGRAD_FAST_FUZZ_EXAMPLES=${MICROGRAD_FAST_FUZZ_EXAMPLES:-30}
    valgrind --tool=memcheck --error-exitcode=99 --errors-for-leak-kinds=none \
        --leak-check=no --undef-value-errors=no --num-callers=30 \
        --suppressions="$ROOT/tools/valgrind-python.supp" --log-file="$LOG.%p" \
        "$PY" -m pytest -q -p no:cacheprovider "${SUITE[@]}" "$@"
    rc=$?
    set -e
    grep -h "ERROR SUMMARY" "$LOG".* | sort | uniq -c
    if [ $rc -eq 99 ]; then
        echo "valgrind reported errors: see $LOG.*" >&2
        exit 1
    fi
    exit $rc
    ;;
debug)
    (cd "$STAGE" && "$PY" setup.py -q build_ext --inplace >build.log 2>&1) \
        || { tail -30 "$STAGE/build.log"; exit 2; }
    cd "$STAGE"
    "$PY" -m pytest -q -p no:cacheprovider "${SUITE[@]}" "$@"
    ;;
*)
    echo "unknown mode $MODE (asan, valgrind or debug)" >&2
    exit 2
    ;;
esac
