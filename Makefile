# mpigan build. Dependencies come from pkg-config and mpicc only (oneDNN: pkg-config `dnnl`, or,
# as Debian's libdnnl-dev ships no .pc file, its header as the compiler finds it and -ldnnl);
# tools/deps.sh installs missing Debian packages first (as root) or names them (otherwise).
#   make            build build/mpigan
#   make test       build and run the test suite (the CI command)
#   make run        the main job (see README)
#   make bench      speed benchmarks
#   make bench-train  training throughput beside the PyTorch peer (docs/benchmarks.md)
#   make asan       AddressSanitizer + UBSan build running the same tests
#   make valgrind   memcheck over the single-process tests (AVX2 build)
#   make install PREFIX=/usr/local

CC      := mpicc
PKGS    := hdf5-openmpi yaml-0.1 libpng libjpeg openblas zlib
# Optimised, but never -ffast-math/-Ofast: they break NaN checks.
OPTFLAGS ?= -O3 -march=native
# -Wno-format-truncation: names and messages are cut to their buffers on purpose.
# -fno-math-errno: sqrtf and friends need not set errno (nothing reads it after a math call),
# so they can be inlined and vectorised (Adam's update); results are bitwise the same.
CFLAGS  += -std=c11 -Wall -Wextra -Werror -Wno-format-truncation -fno-math-errno -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE $(OPTFLAGS) -g
LDLIBS  += -lm -lpthread
PREFIX  ?= /usr/local
BUILD   ?= build
MPIRUN  := tools/mpirun.sh

# Subsystems, lowest first (docs/architecture.md). Each folder of src/ compiles against its
# own headers and those of the subsystems it may use, and no others, so the compiler
# refuses an include that goes upwards.
SUBSYSTEMS := base nn data eval train cli
USES_base  := base
USES_nn    := base nn
USES_data  := base nn data
USES_eval  := base nn data eval
USES_train := base nn data eval train
USES_cli   := $(SUBSYSTEMS)
ALL_INC  := $(SUBSYSTEMS:%=-Iinclude/%)
# a subsystem's private headers (src/train/trainer.h) count too: a change rebuilds its users
HEADERS  := $(wildcard include/*/*.h src/*/*.h)
# the subsystem of src/<subsystem>/...: the second word of the path
subsystem = $(word 2,$(subst /, ,$1))

SRC      := $(sort $(wildcard src/*/*.c src/nn/layers/*.c))
LIB_SRC  := $(filter-out src/cli/main.c,$(SRC))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
TEST_SRC := $(sort $(wildcard tests/test_*.c))
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
# helper programs that shell tests (tests/test_*.sh) drive
TEST_PROG := $(patsubst tests/%.c,$(BUILD)/tests/%,$(sort $(wildcard tests/prog_*.c)))
TEST_SH  := $(sort $(wildcard tests/test_*.sh))
BENCH_SRC := $(sort $(wildcard tools/bench/bench_*.c))
BENCH_BIN := $(BENCH_SRC:tools/%.c=$(BUILD)/tools/%)

.PHONY: all test run bench bench-train asan valgrind clean install deps
all: $(BUILD)/mpigan

# pkg-config flags are resolved once into a generated makefile (after deps are present).
ifeq ($(filter clean,$(MAKECMDGOALS)),)
-include $(BUILD)/config.mk
endif
$(BUILD)/config.mk: tools/deps.sh Makefile
	@tools/deps.sh
	@mkdir -p $(BUILD)
	@pkg-config --exists $(PKGS) || { echo "mpigan: pkg-config cannot find: $(PKGS)" >&2; exit 1; }
	@if pkg-config --exists dnnl; then \
	  printf 'DNNL_CFLAGS := %s\nDNNL_LIBS := %s -lgomp\n' "$$(pkg-config --cflags dnnl)" "$$(pkg-config --libs dnnl)"; \
	elif printf '#include <oneapi/dnnl/dnnl.h>\n' | $(CC) -E -x c - >/dev/null 2>&1; then \
	  printf 'DNNL_CFLAGS :=\nDNNL_LIBS := -ldnnl -lgomp\n'; \
	else echo "mpigan: oneDNN not found (no pkg-config 'dnnl', no <oneapi/dnnl/dnnl.h>): install the Debian package libdnnl-dev" >&2; exit 1; \
	fi > $@
	@printf 'PKG_CFLAGS := %s $$(DNNL_CFLAGS)\nPKG_LIBS := %s $$(DNNL_LIBS)\nTEST_LIBS := %s\n' \
	  "$$(pkg-config --cflags $(PKGS))" "$$(pkg-config --libs $(PKGS))" "$$(pkg-config --libs cmocka)" >> $@

$(BUILD)/src/%.o: src/%.c $(HEADERS) $(BUILD)/config.mk
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(CFLAGS) $(addprefix -Iinclude/,$(USES_$(call subsystem,$<))) $(PKG_CFLAGS) -c $< -o $@

# rebuilt from scratch, so that a removed source leaves no stale object behind
$(BUILD)/libmpigan.a: $(LIB_OBJ)
	@rm -f $@ && ar rcs $@ $^

$(BUILD)/mpigan: $(BUILD)/src/cli/main.o $(BUILD)/libmpigan.a
	@echo "  LINK    $@"
	@$(CC) $(CFLAGS) $^ -o $@ $(PKG_LIBS) $(LDLIBS)

# tests/mg_testenv.c: set-up shared by the tests, linked into each of them
$(BUILD)/tests/mg_testenv.o: tests/mg_testenv.c $(wildcard tests/*.h) $(HEADERS) $(BUILD)/config.mk
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(CFLAGS) $(ALL_INC) $(PKG_CFLAGS) -Itests -c $< -o $@

$(BUILD)/tests/%: tests/%.c $(wildcard tests/*.h) $(BUILD)/tests/mg_testenv.o $(BUILD)/libmpigan.a
	@mkdir -p $(dir $@)
	@echo "  LINK    $@"
	@$(CC) $(CFLAGS) $(ALL_INC) $(PKG_CFLAGS) -Itests $< $(BUILD)/tests/mg_testenv.o $(BUILD)/libmpigan.a -o $@ $(PKG_LIBS) $(TEST_LIBS) $(LDLIBS)

# the benchmarks: tools/bench/bench_X.c -> $(BUILD)/tools/bench/bench_X
$(BUILD)/tools/%: tools/%.c $(BUILD)/libmpigan.a
	@mkdir -p $(dir $@)
	@echo "  LINK    $@"
	@$(CC) $(CFLAGS) $(ALL_INC) $(PKG_CFLAGS) $< $(BUILD)/libmpigan.a -o $@ $(PKG_LIBS) $(LDLIBS)

test: $(BUILD)/mpigan $(TEST_BIN) $(TEST_PROG)
	@BUILD=$(BUILD) tests/run.sh $(TEST_BIN) $(TEST_SH)

bench: $(BUILD)/mpigan $(BENCH_BIN)
	@BUILD=$(BUILD) tools/bench/bench.sh

# Training throughput of mpigan (np 1, 2, threads) beside the PyTorch peer in
# ../shared/peer, interleaved and repeated; BENCH_TRAIN_ARGS passes options (--reps, --only).
bench-train: $(BUILD)/mpigan
	@tools/deps.sh --bench-train
	@BUILD=$(BUILD) tools/bench/bench_train.sh $(BENCH_TRAIN_ARGS)

run: $(BUILD)/mpigan
	@tools/deps.sh --run
	@BUILD=$(BUILD) tools/run.sh

# Leak checking is off: Open MPI keeps allocations until exit, and the tests of the
# fatal-error path leave theirs behind on purpose (they jump out of the failing call).
asan:
	ASAN_OPTIONS=detect_leaks=0:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	$(MAKE) BUILD=build-asan OPTFLAGS="-O1 -march=native -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined" \
	  LDLIBS="-lm -lpthread -fsanitize=address,undefined" test

# valgrind cannot decode AVX-512: this build stops at AVX2 and runs the single-process
# tests under memcheck.
valgrind:
	$(MAKE) BUILD=build-valgrind OPTFLAGS="-O2 -march=x86-64-v3" $(patsubst $(BUILD)/%,build-valgrind/%,$(TEST_BIN))
	@for t in $(patsubst $(BUILD)/%,build-valgrind/%,$(TEST_BIN)); do \
	  grep -q 'mpirun-np' tests/$$(basename $$t).c && continue; \
	  echo "== valgrind $$t"; valgrind -q --error-exitcode=1 $$t > /dev/null || exit 1; done

install: $(BUILD)/mpigan
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/mpigan/configs
	install -m 755 $(BUILD)/mpigan $(DESTDIR)$(PREFIX)/bin/mpigan
	install -m 644 configs/*.yaml $(DESTDIR)$(PREFIX)/share/mpigan/configs/

clean:
	rm -rf build build-asan build-valgrind
