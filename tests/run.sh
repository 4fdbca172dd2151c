#!/bin/sh
# Runs every test given: cmocka binaries (under mpirun for those whose source says
# "mpirun-np: N [M ...]", once per rank count) and shell tests (*.sh, one test each).
# Prints one summary line, "N passed, N failed, N skipped", after the list of what was
# skipped and why.
#
# How a test says it skipped:
#   - a cmocka test calls MG_SKIP("reason") (tests/mg_test.h): it prints "SKIP: test: reason"
#     and cmocka's skip(); cmocka reports it as SKIPPED, not PASSED;
#   - a shell test prints one line "SKIP: reason" and exits 77 (the automake convention);
#   - a shell test that ran but left out part of its checks prints "SKIP: reason" and
#     exits 0: it counts as passed, and the reason is listed as a partial skip.
# Exits non-zero if any test failed or any binary crashed; skips alone do not fail.
# Each run of a binary or shell test is ended after MPIGAN_TEST_TIMEOUT seconds (1200) and
# counts as failed: a rank that fails alone can leave the others waiting in a collective.
set -u
limit=${MPIGAN_TEST_TIMEOUT:-1200}
here=$(cd "$(dirname "$0")" && pwd)
passed=0; failed=0; skipped=0; crashed=""
skips=$(mktemp)
log=$(mktemp)
# where a test's one-rank run leaves references for its runs at other rank counts
# (mg_test_shared_dir in tests/mg_testenv.h): a new directory per run of the suite, so
# that two suites running at once never read each other's references
shared=$(mktemp -d "${TMPDIR:-/tmp}/mpigan_suite.XXXXXX")
export MPIGAN_TEST_SHARED="$shared"
trap 'rm -f "$skips" "$log"; rm -rf "$shared"' EXIT

# Lists the "SKIP: reason" lines of the log, prefixed with $1, once each.
note_skips() {
    sed -n 's/^SKIP: *//p' "$log" | awk '!seen[$0]++' | sed "s|^|  $1: |" >>"$skips"
}

for bin in "$@"; do
    case "$bin" in
    *.sh)
        label=$(basename "$bin")
        echo "=== $label"
        start=$(date +%s)
        timeout -k 10 "$limit" sh "$bin" >"$log" 2>&1
        rc=$?
        [ "$rc" -eq 124 ] && echo "TIMEOUT: $label ran for over $limit s" >>"$log"
        cat "$log"
        case "$rc" in
        0)  passed=$((passed + 1))
            grep -q '^SKIP:' "$log" && note_skips "$label (partly)" ;;
        77) skipped=$((skipped + 1))
            if grep -q '^SKIP:' "$log"; then note_skips "$label"
            else echo "  $label: no reason given" >>"$skips"; fi ;;
        *)  failed=$((failed + 1)) ;;
        esac
        echo "=== $label: exit $rc, $(( $(date +%s) - start ))s"
        continue ;;
    esac
    name=$(basename "$bin")
    src="$here/$name.c"
    nps=$(sed -n 's/.*mpirun-np: *\([0-9 ]*\).*/\1/p' "$src" | head -n 1)
    [ -n "$nps" ] || nps=0
    for np in $nps; do
        if [ "$np" = 0 ]; then label="$name"; cmd="$bin"
        else label="$name (mpirun -np $np)"; cmd="$here/../tools/mpirun.sh $np $bin"; fi
        echo "=== $label"
        start=$(date +%s)
        # shellcheck disable=SC2086
        timeout -k 10 "$limit" $cmd >"$log" 2>&1
        rc=$?
        [ "$rc" -eq 124 ] && echo "TIMEOUT: $label ran for over $limit s (a rank waiting for one that failed?)" >>"$log"
        cat "$log"
        # counts are summed over ranks (each rank runs every test and prints its summary)
        p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$log" | awk '{s+=$1} END {print s+0}')
        f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$log" | awk '{s+=$1} END {print s+0}')
        s=$(sed -n 's/^\[  SKIPPED \] \([0-9]*\) test.*/\1/p' "$log" | awk '{s+=$1} END {print s+0}')
        passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
        if [ "$s" -gt 0 ]; then
            note_skips "$label"
            # skipped tests that gave no reason (cmocka's skip() without MG_SKIP)
            sed -n 's/^\[  SKIPPED \] \([A-Za-z_][A-Za-z0-9_]*\)$/\1/p' "$log" | awk '!seen[$0]++' |
                while read -r t; do
                    grep -q "^SKIP: $t:" "$log" || echo "  $label: $t: no reason given" >>"$skips"
                done
        fi
        if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
            failed=$((failed + 1)); crashed="$crashed $label"
        fi
        echo "=== $label: exit $rc, $(( $(date +%s) - start ))s"
    done
done
[ -n "$crashed" ] && echo "crashed or exited non-zero without a test failure:$crashed"
if [ -s "$skips" ]; then
    echo "skipped:"
    cat "$skips"
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
