#!/bin/sh
# Runs every test given: cmocka binaries (under mpirun for those whose source says
# "mpirun-np: N [M ...]", once per rank count) and shell tests (*.sh, one test each,
# passing when they exit 0). Prints one summary line.
# Exits non-zero if any test failed or any binary crashed.
set -u
here=$(cd "$(dirname "$0")" && pwd)
passed=0; failed=0; crashed=""
for bin in "$@"; do
    case "$bin" in
    *.sh)
        echo "=== $bin"
        start=$(date +%s)
        if sh "$bin"; then passed=$((passed + 1)); rc=0
        else failed=$((failed + 1)); rc=1; fi
        echo "=== $bin: exit $rc, $(( $(date +%s) - start ))s"
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
        log=$(mktemp)
        start=$(date +%s)
        # shellcheck disable=SC2086
        $cmd >"$log" 2>&1
        rc=$?
        cat "$log"
        p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$log" | awk '{s+=$1} END {print s+0}')
        f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$log" | awk '{s+=$1} END {print s+0}')
        rm -f "$log"
        passed=$((passed + p)); failed=$((failed + f))
        if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
            failed=$((failed + 1)); crashed="$crashed $label"
        fi
        echo "=== $label: exit $rc, $(( $(date +%s) - start ))s"
    done
done
[ -n "$crashed" ] && echo "crashed or exited non-zero without a test failure:$crashed"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
