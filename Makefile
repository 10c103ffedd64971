# lota: one Makefile for the daemon, the CLI, the BPF programs and the tests.
#
#   make               build lotad and lotactl (build/ or build-san/ with SANITIZE=1)
#   make test          install dependencies, build, run unit + end-to-end tests, print a summary
#   make demo          local origin + lotad + a short aws-cli workload
#   make bench         benchmarks (QUICK=1 for a short run; NET=1: the network rig, root)
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
	  -Iuser/lib -Icache -Ibpf -Iuser/lotad -I$(B) -MMD -MP
LDFLAGS += $(SAN)
LIBS := -levent -levent_openssl -levent_pthreads -lssl -lcrypto -lbpf -lelf -lz -lpthread

# Layers, bottom up (scripts/check-includes.sh holds them to it): pure libraries, the
# store and the BPF side, the daemon (its exchange core, then the modules that register
# with it), and the CLI, which needs nothing but the libraries.
LIB_SRCS := $(wildcard user/lib/*.c)
CACHE_SRCS := $(wildcard cache/*.c)
BPF_LOADER_SRCS := $(wildcard bpf/*-loader.c)
LOTAD_SRCS := $(filter-out user/lotad/main.c,$(wildcard user/lotad/*.c user/lotad/*/*.c))
LOTACTL_SRCS := $(wildcard user/lotactl/*.c)
objs = $(patsubst %.c,$(B)/%.o,$(1))
BPF_SRCS := $(wildcard bpf/*.bpf.c)
BPF_SKELS := $(patsubst bpf/%.bpf.c,$(B)/%.skel.h,$(BPF_SRCS))
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(B)/tests/%,$(UNIT_SRCS))
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS := $(patsubst tests/fuzz/%.c,build-fuzz/%,$(FUZZ_SRCS))
FUZZ_SECONDS ?= 20
LOTAD_ARCHIVES := $(B)/liblotad.a $(B)/libcache.a $(B)/liblib.a

.PHONY: all test unit e2e demo bench fuzz fuzz-bin unit-bin deps clean format
# Keep generated skeletons and BPF objects (inputs of the loader) between runs.
.SECONDARY:
all: $(B)/lotad $(B)/lotactl

$(B)/lotad: $(B)/user/lotad/main.o $(LOTAD_ARCHIVES)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

$(B)/lotactl: $(call objs,$(LOTACTL_SRCS)) $(B)/liblib.a
	$(CC) $(LDFLAGS) -o $@ $^ -lssl -lcrypto

$(B)/liblib.a: $(call objs,$(LIB_SRCS))
$(B)/libcache.a: $(call objs,$(CACHE_SRCS))
$(B)/liblotad.a: $(call objs,$(LOTAD_SRCS) $(BPF_LOADER_SRCS))
$(B)/%.a:
	@rm -f $@
	ar rcs $@ $^

$(B)/%.o: %.c | $(B)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

# Only the loader sees the generated skeleton.
$(call objs,$(BPF_LOADER_SRCS)): $(BPF_SKELS)

-include $(shell find $(B) -name '*.d' 2>/dev/null)

# BPF: .bpf.c -> object -> skeleton, as libbpf-bootstrap does.
$(B)/vmlinux.h: | $(B)
	$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > $@.tmp && mv $@.tmp $@

$(B)/bpf/%.bpf.o: bpf/%.bpf.c $(wildcard bpf/*.h) $(B)/vmlinux.h
	@mkdir -p $(dir $@)
	$(CLANG) -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) -I$(B) -Ibpf -c $< -o $@
	llvm-strip -g $@ 2>/dev/null || true

$(B)/%.skel.h: $(B)/bpf/%.bpf.o
	$(BPFTOOL) gen skeleton $< > $@.tmp && mv $@.tmp $@

$(B)/tests/%: tests/unit/%.c tests/unit/unit.h $(LOTAD_ARCHIVES)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LOTAD_ARCHIVES) -lcunit $(LIBS)

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
	@QUICK=$(QUICK) /usr/bin/python3 tests/bench/$(if $(filter 1,$(NET)),net.py,run.py) --build $(B)

# libFuzzer targets are built with clang, always sanitized: fuzz_X.c tests user/lib/X.c,
# linked with the other pure libraries it may use.
FUZZ_CFLAGS := -g -O1 -std=gnu11 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined -Iuser/lib
build-fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(LIB_SRCS) $(wildcard user/lib/*.h)
	@mkdir -p build-fuzz
	$(CLANG) $(FUZZ_CFLAGS) -o $@ $(filter %.c,$^) -lssl -lcrypto

fuzz-bin: $(FUZZ_BINS)

fuzz: fuzz-bin
	@for f in $(FUZZ_BINS); do \
		n=$$(basename $$f); mkdir -p build-fuzz/corpus-$$n; \
		echo "fuzz: $$n for $(FUZZ_SECONDS)s"; \
		$$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=0 build-fuzz/corpus-$$n tests/fuzz/seeds/$${n#fuzz_} >/dev/null 2>build-fuzz/$$n.log || { tail -40 build-fuzz/$$n.log; exit 1; }; \
	done

format:
	clang-format -i $(wildcard user/*/*.[ch] user/*/*/*.[ch] cache/*.[ch] bpf/*.[ch] tests/unit/*.c tests/fuzz/*.c)

clean:
	rm -rf build build-san build-fuzz
