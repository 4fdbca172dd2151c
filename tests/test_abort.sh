#!/bin/sh
# A fatal error on one rank ends every rank promptly with a non-zero exit and the message,
# instead of leaving the other rank blocked in a collective.
set -u
build=${BUILD:-build}
here=$(cd "$(dirname "$0")" && pwd)
out=$(mktemp)
start=$(date +%s)
timeout 60 "$here/../tools/mpirun.sh" 2 "$build/tests/prog_abort" >"$out" 2>&1
rc=$?
took=$(( $(date +%s) - start ))
status=0
if [ "$rc" -eq 0 ]; then echo "FAIL: exit 0 although a rank failed"; status=1; fi
if [ "$rc" -eq 124 ]; then echo "FAIL: hung until the 60 s timeout"; status=1; fi
if ! grep -q "rank 1 fails on purpose" "$out"; then echo "FAIL: the error message was not printed"; status=1; fi
if grep -q "unreachable" "$out"; then echo "FAIL: the other rank went on"; status=1; fi
[ "$status" -eq 0 ] && echo "ok: exit $rc after ${took}s with the message"
[ "$status" -eq 0 ] || cat "$out"
rm -f "$out"
exit "$status"
