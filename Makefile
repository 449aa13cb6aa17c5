# inferd - GNU Makefile (no configure step).
#
#   make            build/inferd and build/libinferd.a
#   make test       layering check, unit tests (Criterion), end-to-end tests
#   make asan       the same under AddressSanitizer + UndefinedBehaviorSanitizer
#   make run        install missing packages, build, serve the default model
#   make bench      performance tables (see docs/performance.md)
#   make fuzz       each libFuzzer target for FUZZ_SECONDS
#
# Sources are found by globbing: a new .c file under src/ joins the library,
# a new tests/unit/<module>/test_*.c becomes a test binary.

BUILD ?= build
CC ?= cc
SAN ?= 0
FUZZ_SECONDS ?= 20

CPPFLAGS += -Iinclude -Isrc -D_GNU_SOURCE
CFLAGS ?= -O2 -g
CFLAGS += -std=c11 -Wall -Wextra -Werror -pthread -fno-strict-aliasing
ifeq ($(SAN),1)
CFLAGS := $(filter-out -O2 -O3,$(CFLAGS)) -O1 -fsanitize=address,undefined \
          -fno-sanitize-recover=all -fno-omit-frame-pointer
LDFLAGS += -fsanitize=address,undefined
endif
LDLIBS += -levent -levent_pthreads -lhiredis -ljansson -lpcre2-8 -lutf8proc \
          -lsqlite3 -lcurl -lm -pthread

# Per-CPU-feature kernels: chosen at run time from CPUID, so the binary runs
# on any x86-64. Only files named *_avx2.c / *_avx512.c get these flags.
AVX2_FLAGS = -mavx2 -mfma -mf16c
AVX512_FLAGS = -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512vnni \
               -mavx512bf16 -mavx2 -mfma -mf16c

LIB_SRC := $(shell find src -name '*.c' -not -path 'src/cli/*' | sort)
CLI_SRC := $(sort $(wildcard src/cli/*.c))
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
CLI_OBJ := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
UNIT_SRC := $(shell find tests/unit -name 'test_*.c' 2>/dev/null | sort)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/unit/%)
EXAMPLE_SRC := $(wildcard examples/*.c)
EXAMPLE_BIN := $(EXAMPLE_SRC:examples/%.c=$(BUILD)/examples/%)

.PHONY: all test unit e2e testdata asan run bench fuzz clean layering deps format

all: $(BUILD)/inferd $(BUILD)/libinferd.a

$(BUILD)/libinferd.a: $(LIB_OBJ)
	@mkdir -p $(@D)
	rm -f $@
	ar rcs $@ $^

$(BUILD)/inferd: $(CLI_OBJ) $(BUILD)/libinferd.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(CLI_OBJ) $(BUILD)/libinferd.a $(LDLIBS)

$(BUILD)/obj/%_avx2.o: %_avx2.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(AVX2_FLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/obj/%_avx512.o: %_avx512.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(AVX512_FLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/tests/unit/%: tests/unit/%.c $(BUILD)/libinferd.a
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) -Itests/unit $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libinferd.a -lcriterion $(LDLIBS)

$(BUILD)/examples/%: examples/%.c $(BUILD)/libinferd.a
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libinferd.a $(LDLIBS)

deps:
	@scripts/deps.sh

layering:
	@scripts/check_layering.sh

# Models the tests regenerate instead of vendoring (synth-tiny in every
# weight type, made with `inferd quantize --pure`), into $(BUILD)/testdata.
testdata: all
	@if [ -x scripts/make_synth_tiny.sh ]; then scripts/make_synth_tiny.sh $(BUILD); fi

unit: all $(UNIT_BIN) testdata
	@scripts/run_unit.sh $(BUILD) $(UNIT_BIN)

e2e: all $(EXAMPLE_BIN) testdata
	@INFERD_BIN=$(BUILD)/inferd BUILD=$(BUILD) scripts/run_e2e.sh

test: deps layering
	@$(MAKE) --no-print-directory unit
	@$(MAKE) --no-print-directory e2e

asan: deps
	@$(MAKE) --no-print-directory BUILD=build-asan SAN=1 unit e2e

run: deps all
	@scripts/run.sh $(BUILD)/inferd

bench: all
	@scripts/bench.sh $(BUILD)

fuzz: deps
	@scripts/fuzz.sh $(FUZZ_SECONDS)

format:
	clang-format -i $$(find src include tests examples -name '*.[ch]')

clean:
	rm -rf build build-asan build-fuzz

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d)
