# sluice: one non-recursive Makefile. Objects go to $(BUILD), programs to $(BIN).
#   make              build bin/broker, bin/ctl
#   make test         build and run every test; ends with "N passed, N failed"
#   make SANITIZE=1 test   the same under ASan + UBSan (separate build tree)
#   make bench        run the benchmarks in bench/
#   make bench-peers  sluice beside Redis and beanstalkd, measured on this machine (bench/peers;
#                     installs them: scripts/deps --bench)
#   make chaos        kill -9 the programs at random under load, then check nothing was lost
#                     (CHAOS_SECONDS=60, CHAOS_SEED=...; tests/chaos/run)
#   make chaos-cluster  the same with two brokers in a cluster and NATS nodes killed too
#   make fuzz         build the libFuzzer targets of fuzz/ with clang and run each FUZZ_SECONDS
#   make valgrind     run every unit test binary under valgrind memcheck
#   make install PREFIX=/usr/local   programs and manual pages (DESTDIR=... for staging)

VERSION   := 0.1.0
# Builds use every CPU: JOBS=1 (or -jN on the command line) says otherwise.
JOBS      ?= $(shell nproc 2>/dev/null || echo 1)
MAKEFLAGS += -j$(JOBS)
CC        ?= cc
PREFIX    ?= /usr/local
MANDIR    ?= $(PREFIX)/share/man
OPT       ?= -O2

ifeq ($(SANITIZE),1)
BUILD     := build/san
BIN       := build/san/bin
SANFLAGS  := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
else
BUILD     := build/rel
BIN       := bin
SANFLAGS  :=
endif

# Deferred (=): evaluated when a recipe runs, after scripts/deps has installed the packages.
MSGPACK_CFLAGS  = $(shell pkg-config --cflags msgpack 2>/dev/null)
MSGPACK_LIBS    = $(shell pkg-config --libs msgpack 2>/dev/null || echo -lmsgpackc)
MYSQL_CFLAGS    = $(shell pkg-config --cflags mysqlclient 2>/dev/null)
MYSQL_LIBS      = $(shell pkg-config --libs mysqlclient 2>/dev/null)
CMOCKA_CFLAGS   = $(shell pkg-config --cflags cmocka 2>/dev/null)
CMOCKA_LIBS     = $(shell pkg-config --libs cmocka 2>/dev/null || echo -lcmocka)
JANSSON_CFLAGS  = $(shell pkg-config --cflags jansson 2>/dev/null)
JANSSON_LIBS    = $(shell pkg-config --libs jansson 2>/dev/null || echo -ljansson)
# libnats: the broker's cluster mode (broker/jstream.c) speaks NATS JetStream.
NATS_LIBS       = $(shell pkg-config --libs libnats 2>/dev/null || echo -lnats)
# libzstd: a cluster leader compresses what it appends to the stream (broker/jzip.c).
ZSTD_LIBS       = $(shell pkg-config --libs libzstd 2>/dev/null || echo -lzstd)
NCURSES_CFLAGS  = $(shell pkg-config --cflags ncursesw 2>/dev/null)
NCURSES_LIBS    = $(shell pkg-config --libs ncursesw 2>/dev/null || echo -lncursesw)

CFLAGS     = -std=c11 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wformat=2 \
             $(OPT) -g -D_GNU_SOURCE -DSLUICE_VERSION='"$(VERSION)"' \
             -Icommon $(MSGPACK_CFLAGS) $(MYSQL_CFLAGS) $(JANSSON_CFLAGS) $(SANFLAGS) -MMD -MP $(EXTRA_CFLAGS)
LDFLAGS    = $(SANFLAGS) $(EXTRA_LDFLAGS)
LIBS       = -lnng $(MSGPACK_LIBS) $(MYSQL_LIBS) $(JANSSON_LIBS) $(NATS_LIBS) $(ZSTD_LIBS) -lpthread

PROGS     := broker ctl worker worker-pool router

COMMON_SRC := $(wildcard common/*.c)
COMMON_OBJ := $(COMMON_SRC:%.c=$(BUILD)/%.o)
LIBSLUICE  := $(BUILD)/libsluice.a
# common/nngfix.c's sendmsg() must replace libc's (and a sanitizer's) in every program: it is
# linked as an object, which always wins, and kept out of the archive.
NNGFIX     := $(BUILD)/common/nngfix.o

# Each program is its folder's .c files; main.c holds main().
BROKER_SRC := $(wildcard broker/*.c)
# The dashboard's static files (broker/dash/) become C arrays in a generated source, made by
# scripts/embed.c (a C program of ours: no xxd, no build step for the page itself).
DASH_FILES := $(sort $(wildcard broker/dash/*.html broker/dash/*.js broker/dash/*.css))
DASH_GEN   := $(BUILD)/gen/dash_files.c
EMBED      := $(BUILD)/gen/embed
BROKER_OBJ := $(BROKER_SRC:%.c=$(BUILD)/%.o) $(BUILD)/gen/dash_files.o
BROKER_LIB_OBJ := $(filter-out $(BUILD)/broker/main.o,$(BROKER_OBJ))
CTL_SRC    := $(wildcard ctl/*.c)
CTL_OBJ    := $(CTL_SRC:%.c=$(BUILD)/%.o)
# worker/ holds two programs: worker-pool is worker/pool*.c, worker is the rest; both link
# worker/status.c (the status page they share).
POOL_SRC   := $(wildcard worker/pool*.c) worker/status.c
POOL_OBJ   := $(POOL_SRC:%.c=$(BUILD)/%.o)
WORKER_SRC := $(filter-out $(wildcard worker/pool*.c),$(wildcard worker/*.c))
WORKER_OBJ := $(WORKER_SRC:%.c=$(BUILD)/%.o)
# Unit tests link every module but the programs' main.o files.
WLIB_OBJ   := $(filter-out $(BUILD)/worker/main.o $(BUILD)/worker/pool_main.o,\
                $(sort $(WORKER_OBJ) $(POOL_OBJ)))
ROUTER_SRC := $(wildcard router/*.c)
ROUTER_OBJ := $(ROUTER_SRC:%.c=$(BUILD)/%.o)
RLIB_OBJ   := $(filter-out $(BUILD)/router/main.o,$(ROUTER_OBJ))
EXAMPLE_SRC := $(wildcard examples/*.c)
EXAMPLE_BIN := $(EXAMPLE_SRC:examples/%.c=$(BUILD)/examples/%)

UNIT_SRC   := $(wildcard tests/unit/test_*.c)
UNIT_BIN   := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
TOOL_SRC   := $(wildcard tests/tools/*.c)
TOOL_BIN   := $(TOOL_SRC:tests/tools/%.c=$(BUILD)/tests/%)
# Fuzz targets (fuzz/): built with clang and libFuzzer into build/fuzz by `make fuzz`; and
# with $(CC) as replay programs (fuzz/replay.c's main) that `make test` runs over every seed
# and regression input, so a crash once found stays fixed without clang.
FUZZ_TARGETS := fuzz_request fuzz_journal fuzz_frame fuzz_request_journal fuzz_request_token \
                fuzz_httpjson
REPLAY_BIN := $(FUZZ_TARGETS:%=$(BUILD)/tests/replay_%)
# Each bench/*.c is a program, but bench/benchlib.c: what they share, linked into each.
BENCH_LIB_OBJ := $(BUILD)/bench/benchlib.o
# bench/peers_sys.c is a part of bench/peers, not a program of its own.
BENCH_SRC  := $(filter-out bench/benchlib.c bench/peers_sys.c,$(wildcard bench/*.c))
BENCH_BIN  := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)
# One manual page per program: man/PROG.1.in filled from the program's --help (scripts/mkman).
MAN_PAGES  := $(PROGS:%=$(BUILD)/man/%.1)

# Quiet by default; V=1 prints every command.
ifeq ($(V),1)
Q :=
else
Q := @
endif

.SECONDARY:
.PHONY: all test unit bench bench-peers chaos chaos-cluster install uninstall clean deps cppcheck run FORCE fuzz fuzz-build \
        fuzz-corpus valgrind
all: $(addprefix $(BIN)/,$(PROGS)) $(EXAMPLE_BIN) $(MAN_PAGES)

# Installs missing Debian packages (saying so) before anything compiles.
# SLUICE_NO_DEPS=1 skips the check.
deps:
	@[ "$(SLUICE_NO_DEPS)" = 1 ] || scripts/deps

$(BUILD)/%.o: %.c | deps
	@mkdir -p $(dir $@)
	@[ "$(V)" = 1 ] || echo "  CC      $<"
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

$(EMBED): scripts/embed.c
	@mkdir -p $(dir $@)
	@[ "$(V)" = 1 ] || echo "  CC      $<"
	$(Q)$(CC) -std=c11 -Wall -Wextra -Werror -O2 -o $@ $<

$(DASH_GEN): $(DASH_FILES) $(EMBED)
	@[ "$(V)" = 1 ] || echo "  EMBED   $@"
	$(Q)$(EMBED) $@.tmp $(DASH_FILES) && mv $@.tmp $@

$(BUILD)/gen/dash_files.o: $(DASH_GEN) | deps
	@[ "$(V)" = 1 ] || echo "  CC      $<"
	$(Q)$(CC) $(CFLAGS) -Ibroker -c $< -o $@

$(LIBSLUICE): $(filter-out $(NNGFIX),$(COMMON_OBJ))
	@mkdir -p $(dir $@)
	@[ "$(V)" = 1 ] || echo "  AR      $@"
	$(Q)rm -f $@ && $(AR) rcs $@ $^

$(BIN)/broker: $(BROKER_OBJ) $(NNGFIX) $(LIBSLUICE)
	@mkdir -p $(dir $@)
	@[ "$(V)" = 1 ] || echo "  LD      $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

# Only the live view's terminal code (ctl stats --watch) sees curses.
$(BUILD)/ctl/watch_tui.o: CFLAGS += $(NCURSES_CFLAGS)

$(BIN)/ctl: $(CTL_OBJ) $(NNGFIX) $(LIBSLUICE)
	@mkdir -p $(dir $@)
	@[ "$(V)" = 1 ] || echo "  LD      $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LIBS) $(NCURSES_LIBS)

$(BIN)/worker: $(WORKER_OBJ) $(NNGFIX) $(LIBSLUICE)
	@mkdir -p $(dir $@)
	@[ "$(V)" = 1 ] || echo "  LD      $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BIN)/worker-pool: $(POOL_OBJ) $(NNGFIX) $(LIBSLUICE)
	@mkdir -p $(dir $@)
	@[ "$(V)" = 1 ] || echo "  LD      $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BIN)/router: $(ROUTER_OBJ) $(NNGFIX) $(LIBSLUICE)
	@mkdir -p $(dir $@)
	@[ "$(V)" = 1 ] || echo "  LD      $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/man/%.1: man/%.1.in scripts/mkman $(BIN)/%
	@mkdir -p $(dir $@)
	@[ "$(V)" = 1 ] || echo "  MAN     $@"
	$(Q)scripts/mkman $* $(BIN) $(VERSION) >$@.tmp && mv $@.tmp $@

$(BUILD)/examples/%: $(BUILD)/examples/%.o $(NNGFIX) $(LIBSLUICE)
	@mkdir -p $(dir $@)
	@[ "$(V)" = 1 ] || echo "  LD      $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

# Unit tests link the broker's modules (all but main.o) and libsluice.
$(BUILD)/tests/test_%: $(BUILD)/tests/unit/test_%.o $(BROKER_LIB_OBJ) $(WLIB_OBJ) $(RLIB_OBJ) \
                       $(NNGFIX) $(LIBSLUICE)
	@mkdir -p $(dir $@)
	@[ "$(V)" = 1 ] || echo "  LD      $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LIBS) $(CMOCKA_LIBS)

# The live view's model and screen (ctl/watch*.c but watch_tui.c: no terminal code) are tested
# on their own.
$(BUILD)/tests/test_watch: $(BUILD)/ctl/watch.o $(BUILD)/ctl/watch_layout.o \
                          $(BUILD)/ctl/watch_render.o
# They come after libsluice.a on the command line: it is searched again for what they use.
$(BUILD)/tests/test_watch: LIBS := $(LIBSLUICE) $(LIBS)

$(BUILD)/tests/unit/%.o: tests/unit/%.c | deps
	@mkdir -p $(dir $@)
	@[ "$(V)" = 1 ] || echo "  CC      $<"
	$(Q)$(CC) $(CFLAGS) -Ibroker -Iworker -Irouter -Ictl $(CMOCKA_CFLAGS) -c $< -o $@

$(BUILD)/tests/%: $(BUILD)/tests/tools/%.o $(NNGFIX) $(LIBSLUICE)
	@mkdir -p $(dir $@)
	@[ "$(V)" = 1 ] || echo "  LD      $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/bench/peers: $(BUILD)/bench/peers_sys.o
# Objects first, then the archives they draw on (peers_sys.o comes last in $^).
$(BUILD)/bench/%: $(BUILD)/bench/%.o $(BENCH_LIB_OBJ) $(NNGFIX) $(LIBSLUICE)
	@mkdir -p $(dir $@)
	@[ "$(V)" = 1 ] || echo "  LD      $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(filter-out %.o,$^) $(LIBS) -lm

# --version prints how the program was built: common/opt.c gets the build options as macros,
# and is rebuilt when they change ($(BUILD)/buildflags holds the last ones).
BUILD_CFLAGS = $(strip $(OPT) -g $(SANFLAGS) $(EXTRA_CFLAGS))
BUILD_SAN    = $(if $(SANFLAGS),address undefined,none)
$(BUILD)/common/opt.o: CFLAGS += -DSLUICE_BUILD_CC='"$(CC)"' \
    -DSLUICE_BUILD_CFLAGS='"$(subst ",,$(BUILD_CFLAGS))"' -DSLUICE_BUILD_SANITIZE='"$(BUILD_SAN)"'
$(BUILD)/common/opt.o: $(BUILD)/buildflags
$(BUILD)/buildflags: FORCE
	@mkdir -p $(dir $@)
	@echo '$(CC) | $(subst ',,$(BUILD_CFLAGS))' | cmp -s - $@ || \
	    echo '$(CC) | $(subst ',,$(BUILD_CFLAGS))' >$@
FORCE:

$(BUILD)/fuzz/%.o: fuzz/%.c | deps
	@mkdir -p $(dir $@)
	@[ "$(V)" = 1 ] || echo "  CC      $<"
	$(Q)$(CC) $(CFLAGS) -Ibroker -Iworker -c $< -o $@

$(BUILD)/tests/replay_%: $(BUILD)/fuzz/%.o $(BUILD)/fuzz/replay.o $(BUILD)/fuzz/fuzz_base.o \
                         $(BROKER_LIB_OBJ) $(WLIB_OBJ) $(NNGFIX) $(LIBSLUICE)
	@mkdir -p $(dir $@)
	@[ "$(V)" = 1 ] || echo "  LD      $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

# Writes the seed corpora of fuzz/corpus/ again (they are checked in; run after a change to
# the wire protocol or the journal's format).
$(BUILD)/fuzz/mkcorpus: $(BUILD)/fuzz/mkcorpus.o $(BUILD)/fuzz/mkcorpus_req.o \
                        $(BUILD)/fuzz/fuzz_base.o $(BROKER_LIB_OBJ) \
                        $(WLIB_OBJ) $(NNGFIX) $(LIBSLUICE)
	@mkdir -p $(dir $@)
	@[ "$(V)" = 1 ] || echo "  LD      $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

fuzz-corpus: $(BUILD)/fuzz/mkcorpus
	$(BUILD)/fuzz/mkcorpus fuzz/corpus

# libFuzzer builds: every module compiled again by clang with coverage, ASan and UBSan.
FUZZ_CC    ?= clang
FZ         := build/fuzz
FUZZ_SAN   := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_CFLAGS = -std=c11 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wformat=2 -O1 -g \
              -D_GNU_SOURCE -DSLUICE_VERSION='"$(VERSION)"' -Icommon -Ibroker -Iworker \
              $(MSGPACK_CFLAGS) $(MYSQL_CFLAGS) -fsanitize=fuzzer-no-link $(FUZZ_SAN) -MMD -MP
FZ_LIB_OBJ := $(patsubst $(BUILD)/%,$(FZ)/%,$(filter-out $(NNGFIX),$(COMMON_OBJ)) \
                $(BROKER_LIB_OBJ) $(WLIB_OBJ)) $(FZ)/fuzz/fuzz_base.o
FUZZ_BIN   := $(FUZZ_TARGETS:%=$(FZ)/bin/%)
FUZZ_SECONDS ?= 60
FUZZ_PARALLEL ?= 1

$(FZ)/%.o: %.c | fuzzdeps
	@mkdir -p $(dir $@)
	@[ "$(V)" = 1 ] || echo "  CC      $< (fuzz)"
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -c $< -o $@

# The dashboard's generated source is made in $(BUILD)/gen, not in the tree.
$(FZ)/gen/dash_files.o: $(DASH_GEN) | fuzzdeps
	@mkdir -p $(dir $@)
	@[ "$(V)" = 1 ] || echo "  CC      $< (fuzz)"
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -c $< -o $@

$(FZ)/bin/%: $(FZ)/fuzz/%.o $(FZ_LIB_OBJ)
	@mkdir -p $(dir $@)
	@[ "$(V)" = 1 ] || echo "  LD      $@"
	$(Q)$(FUZZ_CC) -fsanitize=fuzzer $(FUZZ_SAN) -o $@ $^ $(LIBS)

.PHONY: fuzzdeps
fuzzdeps:
	@[ "$(SLUICE_NO_DEPS)" = 1 ] || scripts/deps --fuzz

fuzz-build: $(FUZZ_BIN)

# Runs each target for FUZZ_SECONDS over its seeds and regression inputs, FUZZ_PARALLEL at a
# time; new inputs go to build/fuzz/corpus, crashing ones to build/fuzz/crashes (fuzz/run).
fuzz: $(FUZZ_BIN)
	@FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_PARALLEL=$(FUZZ_PARALLEL) fuzz/run $(FZ) $(FUZZ_TARGETS)

# The test runner runs every unit binary and integration script, TEST_JOBS at a time (a
# script marked "# tests/run: alone" with nothing beside it), and prints the closing
# "N passed, N failed" line; it exits non-zero on any failure.
TEST_JOBS ?= 2
test: all $(UNIT_BIN) $(TOOL_BIN) $(REPLAY_BIN) $(BENCH_BIN)
	@[ "$(SLUICE_NO_DEPS)" = 1 ] || scripts/deps --test
	@LSAN_OPTIONS=suppressions=$(abspath tests/lsan.supp):print_suppressions=0 \
	    SLUICE_BIN=$(abspath $(BIN)) SLUICE_TESTBIN=$(abspath $(BUILD)/tests) \
	    SLUICE_FUZZ_ROOT=$(abspath fuzz) SLUICE_BENCHBIN=$(abspath $(BUILD)/bench) \
	    tests/run -j$(TEST_JOBS) $(UNIT_BIN) $(REPLAY_BIN) $(sort $(wildcard tests/integ/t_*.sh))

# Every unit test binary (and the fuzz replays) under valgrind memcheck: any memory error, or
# memory definitely, indirectly or possibly lost, fails the binary ("still reachable" does
# not: nng's process-wide state). tests/valgrind.supp says what it hides and why. But
# test_deadline: its child processes are ended on purpose by _exit from the deadline's own
# thread, whose thread-local block memcheck then reports as possibly lost (and the child's
# exit status becomes memcheck's, which is what the test checks).
VALGRIND_BIN := $(filter-out $(BUILD)/tests/test_deadline,$(UNIT_BIN)) $(REPLAY_BIN)
VALGRIND ?= valgrind --quiet --error-exitcode=99 --leak-check=full \
            --errors-for-leak-kinds=definite,indirect,possible \
            --show-leak-kinds=definite,indirect,possible \
            --suppressions=$(abspath tests/valgrind.supp)
valgrind: all $(VALGRIND_BIN)
	@[ "$(SLUICE_NO_DEPS)" = 1 ] || scripts/deps --valgrind
	@SLUICE_TEST_WRAP="$(VALGRIND)" SLUICE_TEST_TIMEOUT=600 \
	    SLUICE_BIN=$(abspath $(BIN)) SLUICE_TESTBIN=$(abspath $(BUILD)/tests) \
	    SLUICE_FUZZ_ROOT=$(abspath fuzz) SLUICE_BENCHBIN=$(abspath $(BUILD)/bench) \
	    tests/run -j$(TEST_JOBS) $(VALGRIND_BIN)

unit: $(UNIT_BIN)
	@tests/run $(UNIT_BIN)

# The main job in the foreground: broker, worker-pool -n 8 (or POOL_ARGS) and router on the
# embedded default, logs prefixed; Ctrl-C stops them all (scripts/run-main).
run: all
	@scripts/run-main $(abspath $(BIN)) $(POOL_ARGS)

# The chaos run: CHAOS_SECONDS (default 60) of SIGKILLs under load, then the invariants; TAP and
# a summary; exits non-zero when one fails. CHAOS_SEED reproduces the kills' choices.
chaos: all $(TOOL_BIN)
	@[ "$(SLUICE_NO_DEPS)" = 1 ] || scripts/deps --test
	@SLUICE_BIN=$(abspath $(BIN)) SLUICE_TESTBIN=$(abspath $(BUILD)/tests) \
	    bash tests/chaos/run

# The same with two brokers in a cluster over a private 3-node NATS cluster (README "Cluster").
chaos-cluster: all $(TOOL_BIN)
	@[ "$(SLUICE_NO_DEPS)" = 1 ] || scripts/deps --test
	@CHAOS_CLUSTER=1 SLUICE_BIN=$(abspath $(BIN)) SLUICE_TESTBIN=$(abspath $(BUILD)/tests) \
	    bash tests/chaos/run

bench: all $(BENCH_BIN)
	@SLUICE_BIN=$(abspath $(BIN)) SLUICE_BENCHBIN=$(abspath $(BUILD)/bench) bench/run

# One set of loads against Redis, Redis with appendfsync always, beanstalkd and sluice (both
# journal modes), each server fresh on a private Unix socket: push, end to end, latency and the
# servers' CPU per job; RUNS=3 rounds, about 5 minutes (bench/peers says what each line is).
bench-peers: all $(BENCH_BIN)
	@[ "$(SLUICE_NO_DEPS)" = 1 ] || scripts/deps --bench
	@SLUICE_BIN=$(abspath $(BIN)) SLUICE_BENCHBIN=$(abspath $(BUILD)/bench) bench/peers

# Programs to $(PREFIX)/bin, manual pages to $(MANDIR)/man1; DESTDIR is prepended to both.
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(MANDIR)/man1
	install -m 0755 $(addprefix $(BIN)/,$(PROGS)) $(DESTDIR)$(PREFIX)/bin/
	install -m 0644 $(MAN_PAGES) $(DESTDIR)$(MANDIR)/man1/

uninstall:
	rm -f $(addprefix $(DESTDIR)$(PREFIX)/bin/,$(PROGS))
	rm -f $(PROGS:%=$(DESTDIR)$(MANDIR)/man1/%.1)

cppcheck:
	cppcheck --quiet --error-exitcode=1 --enable=warning,style,performance,portability \
	    --inline-suppr --suppress=missingIncludeSystem --std=c11 -Icommon -Ibroker -Iworker -Irouter \
	    -Ifuzz \
	    common broker ctl worker router fuzz bench scripts/embed.c

clean:
	rm -rf build bin

-include $(shell find build -name '*.d' 2>/dev/null)
