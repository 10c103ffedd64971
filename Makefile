# lota: one Makefile for the daemon, the CLI, the BPF programs and the tests.
#
#   make               build lotad and lotactl (build/ or build-san/ with SANITIZE=1)
#   make test          install dependencies, build, run unit + end-to-end tests, print a summary
#   make demo          local origin + lotad + a short aws-cli workload
#   make bench         benchmarks (QUICK=1 for a short run)
#   make fuzz          run the libFuzzer targets (FUZZ_SECONDS each)

SANITIZE ?= 0
ifeq ($(SANITIZE),1)
B := build-san
SAN := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
else
B := build
SAN :=
endif

CC ?= cc
CLANG ?= clang
BPFTOOL ?= bpftool
ARCH := $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')

CFLAGS ?= -O2 -g
CFLAGS += -std=gnu11 -Wall -Wextra -Werror -Wno-unused-parameter -Wno-format-truncation -D_GNU_SOURCE $(SAN) \
	  -Iuser -Icache -Ibpf -I$(B)
LDFLAGS += $(SAN)
LIBS := -levent -levent_openssl -levent_pthreads -lssl -lcrypto -lbpf -lelf -lz -lpthread

CACHE_SRCS := $(wildcard cache/*.c)
USER_LIB_SRCS := $(filter-out user/main.c user/lotactl.c,$(wildcard user/*.c))
LIB_OBJS := $(patsubst %.c,$(B)/%.o,$(CACHE_SRCS) $(USER_LIB_SRCS))
BPF_SRCS := $(wildcard bpf/*.bpf.c)
BPF_SKELS := $(patsubst bpf/%.bpf.c,$(B)/%.skel.h,$(BPF_SRCS))
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(B)/tests/%,$(UNIT_SRCS))
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS := $(patsubst tests/fuzz/%.c,build-fuzz/%,$(FUZZ_SRCS))
FUZZ_SECONDS ?= 20

.PHONY: all test unit e2e demo bench fuzz fuzz-bin unit-bin deps clean format
# Keep generated skeletons and BPF objects: they are inputs of every C object.
.SECONDARY:
all: $(B)/lotad $(B)/lotactl

$(B)/lotad: $(B)/user/main.o $(B)/liblota.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

$(B)/lotactl: $(B)/user/lotactl.o $(B)/liblota.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

$(B)/liblota.a: $(LIB_OBJS)
	ar rcs $@ $^

$(B)/%.o: %.c $(wildcard user/*.h cache/*.h bpf/*.h) $(BPF_SKELS) | $(B)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

# BPF: .bpf.c -> object -> skeleton, as libbpf-bootstrap does.
$(B)/vmlinux.h: | $(B)
	$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > $@.tmp && mv $@.tmp $@

$(B)/bpf/%.bpf.o: bpf/%.bpf.c $(wildcard bpf/*.h) $(B)/vmlinux.h
	@mkdir -p $(dir $@)
	$(CLANG) -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) -I$(B) -Ibpf -c $< -o $@
	llvm-strip -g $@ 2>/dev/null || true

$(B)/%.skel.h: $(B)/bpf/%.bpf.o
	$(BPFTOOL) gen skeleton $< > $@.tmp && mv $@.tmp $@

$(B)/tests/%: tests/unit/%.c tests/unit/unit.h $(B)/liblota.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(B)/liblota.a -lcunit $(LIBS)

$(B):
	@mkdir -p $(B)

unit-bin: $(UNIT_BINS)

unit: all unit-bin
	@scripts/run-tests.sh unit $(B)

e2e: all
	@scripts/run-tests.sh e2e $(B)

test:
	@scripts/deps.sh
	@$(MAKE) --no-print-directory all unit-bin fuzz-bin
	@scripts/run-tests.sh all $(B)

demo:
	@scripts/deps.sh
	@$(MAKE) --no-print-directory all
	@scripts/demo.sh $(B)

bench:
	@scripts/deps.sh
	@$(MAKE) --no-print-directory all
	@QUICK=$(QUICK) /usr/bin/python3 tests/bench/run.py --build $(B)

# libFuzzer targets are built with clang, always sanitized: fuzz_X.c tests user/X.c.
FUZZ_CFLAGS := -g -O1 -std=gnu11 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined -Iuser -Icache -Ibpf
build-fuzz/fuzz_%: tests/fuzz/fuzz_%.c user/%.c $(wildcard user/*.h)
	@mkdir -p build-fuzz
	$(CLANG) $(FUZZ_CFLAGS) -o $@ $(filter %.c,$^) -lcrypto

fuzz-bin: $(FUZZ_BINS)

fuzz: fuzz-bin
	@for f in $(FUZZ_BINS); do \
		n=$$(basename $$f); mkdir -p build-fuzz/corpus-$$n; \
		echo "fuzz: $$n for $(FUZZ_SECONDS)s"; \
		$$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=0 build-fuzz/corpus-$$n tests/fuzz/seeds/$${n#fuzz_} >/dev/null 2>build-fuzz/$$n.log || { tail -40 build-fuzz/$$n.log; exit 1; }; \
	done

format:
	clang-format -i $(wildcard user/*.[ch] cache/*.[ch] bpf/*.[ch] tests/unit/*.c tests/fuzz/*.c)

clean:
	rm -rf build build-san build-fuzz
