#!/bin/sh
# The image converters from the command line: `mpigan data images` on a folder of JPEGs and
# PNGs in class subfolders under mpirun -np 2 writes the same file, byte for byte, as one
# rank, `data info` describes the result, a damaged JPEG ends both ranks with a message
# naming it (or is skipped and counted with --skip-bad), images smaller than --size with
# --crop none are refused, `data cifar10` converts batches, and a file size limit hit
# during conversion (a full disk) leaves neither the output nor its temporary file.
set -u
build=${BUILD:-build}
here=$(cd "$(dirname "$0")" && pwd)
mpirun="$here/../tools/mpirun.sh"
work=$(mktemp -d "${TMPDIR:-/tmp}/mpigan_cli_images_XXXXXX")
status=0
fail() { echo "FAIL: $*"; status=1; }
log="$work/log"
: >"$log"

"$build/tests/prog_write_images" "$work" || fail "writing the inputs"

timeout 60 "$mpirun" 2 "$build/mpigan" data images "$work/photos" --size 16 --out "$work/out2" >"$work/o2" 2>&1 \
    || fail "data images at np 2"
cat "$work/o2" >>"$log"
grep -q "wrote $work/out2/photos.h5: 4 images (3 x 16 x 16), 2 classes; skipped 0 bad files" "$work/o2" \
    || fail "data images: unexpected summary"
timeout 60 "$build/mpigan" data images "$work/photos" --size 16 --out "$work/out1" >>"$log" 2>&1 \
    || fail "data images on one rank"
cmp -s "$work/out1/photos.h5" "$work/out2/photos.h5" || fail "np 1 and np 2 wrote different files"

"$build/mpigan" data info "$work/out2/photos.h5" >"$work/info" 2>&1 || fail "data info"
cat "$work/info" >>"$log"
for want in "samples      4" "channels     3" "size         16 x 16" "labels       yes, 2 class names" \
    "0=cats, 1=dogs" "on disk"; do
    grep -q "$want" "$work/info" || fail "data info lacks '$want'"
done

timeout 60 "$mpirun" 2 "$build/mpigan" data images "$work/broken" --size 16 --out "$work/outb" >"$work/eb" 2>&1
rc=$?
cat "$work/eb" >>"$log"
[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] || fail "damaged JPEG at np 2: exit $rc"
grep -q "broken/bad.jpg: damaged JPEG" "$work/eb" || fail "damaged JPEG: the message does not name the file"
[ -z "$(ls -A "$work/outb" 2>/dev/null)" ] || fail "damaged JPEG: files left in the output folder"
timeout 60 "$mpirun" 2 "$build/mpigan" data images "$work/broken" --size 16 --out "$work/outb" --skip-bad \
    >"$work/sb" 2>&1 || fail "--skip-bad at np 2"
cat "$work/sb" >>"$log"
grep -q "1 images (3 x 16 x 16); skipped 1 bad file" "$work/sb" || fail "--skip-bad: summary does not count it"

timeout 60 "$mpirun" 2 "$build/mpigan" data images "$work/small" --size 16 --crop none --out "$work/outs" \
    >"$work/es" 2>&1
rc=$?
cat "$work/es" >>"$log"
[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] || fail "too small with --crop none: exit $rc"
grep -q "small/a.png: the image is 20 x 10, smaller than --size 16" "$work/es" || fail "too small: message"

timeout 60 "$mpirun" 2 "$build/mpigan" data cifar10 "$work/cifar" --out "$work/outc" >"$work/c" 2>&1 \
    || fail "data cifar10 at np 2"
cat "$work/c" >>"$log"
grep -q "cifar10-train.h5 (10 images) and .*cifar10-test.h5 (2 images)" "$work/c" || fail "data cifar10: summary"
"$build/mpigan" data info "$work/outc/cifar10-train.h5" 2>&1 | grep -q "images (10, 3, 32, 32) uint8 + labels" \
    || fail "data info on the CIFAR-10 file"

"$build/mpigan" data images "$work/photos" --out "$work/x" >"$work/u" 2>&1
[ $? -eq 2 ] || fail "a missing --size is not a usage error"

# A full disk: a file size limit on the rank (not on mpirun, whose shared-memory files
# need room, hence one rank), with SIGXFSZ ignored, so writing past it fails with EFBIG.
timeout 60 "$mpirun" 1 sh -c "trap '' XFSZ; ulimit -f 64; exec '$build/mpigan' data images '$work/photos' \
    --size 16 --out '$work/outf'" >"$work/ef" 2>&1
rc=$?
cat "$work/ef" >>"$log"
[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] || fail "file size limit: exit $rc"
grep -q "photos.h5.tmp-.*File too large" "$work/ef" || fail "file size limit: no clear message"
[ -z "$(ls -A "$work/outf" 2>/dev/null)" ] || fail "file size limit: files left in the output folder"

[ "$status" -eq 0 ] && echo "ok: data images (np 1 = np 2), info, damaged/small inputs, cifar10, full disk"
[ "$status" -eq 0 ] || cat "$log"
rm -rf "$work"
exit "$status"
