# kxp build. `make` builds everything into build/; `make deps` installs the
# Debian 12 packages; `make demo`, `make test` and `make bench` install them
# first, so each works as the first command on a fresh machine. V=1 shows commands.
.DELETE_ON_ERROR:
.SECONDARY:
.DEFAULT_GOAL := all

BUILD ?= build
CLANG ?= clang
BPFTOOL ?= bpftool
CC ?= gcc

ifeq ($(V),1)
Q =
msg =
else
Q = @
msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

# Debian 12 packages: build (compilers, libraries) and run/test (bpftool, iproute2, jq).
DEB_PKGS := clang llvm bpftool libbpf-dev libelf-dev zlib1g-dev libcurl4-openssl-dev \
	libcjson-dev libyaml-dev libmnl-dev libmicrohttpd-dev linux-libc-dev pkg-config make gcc openssl \
	iproute2 jq procps util-linux ethtool curl iptables nftables ipset conntrack gnuplot-nox time

ARCH := $(shell uname -m | sed 's/x86_64/x86/;s/aarch64/arm64/')
# The system include dirs clang would use for the host (asm/types.h lives in the
# multiarch dir); -target bpf does not search them, so pass them explicitly.
CLANG_BPF_SYS_INCLUDES = $(shell $(CLANG) -v -E - </dev/null 2>&1 | \
	sed -n '/<...> search starts here:/,/End of search list./{ s| \(/.*\)|-idirafter \1|p }')

# BPF v3 instructions (32-bit jumps and ALU, 5.1+; the atomic fetch-and-add of
# round robin, 5.12+, only in the TC/XDP objects that need bpf_loop, 5.17+:
# see kxp_rr_next in bpf/lib/lb.h).
BPF_CFLAGS := -g -O2 -target bpf -mcpu=v3 -D__TARGET_ARCH_$(ARCH) -Wall -Werror -Wno-unused-function \
	-Iinclude -Ibpf
CFLAGS ?= -O2 -g
CFLAGS += -std=gnu11 -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers \
	-D_GNU_SOURCE -Iinclude -Iuserspace -I$(BUILD) $(shell pkg-config --cflags libcjson 2>/dev/null)
LDLIBS := -lbpf -lelf -lz -lcurl -lcjson -lyaml -lmnl -lmicrohttpd -lm -lpthread

BPF_SRCS := $(wildcard bpf/*.bpf.c)
BPF_OBJS := $(patsubst bpf/%.bpf.c,$(BUILD)/%.bpf.o,$(BPF_SRCS))
# Kernels before 5.17 have no bpf_loop: the packet objects are built a second
# time without it (-DKXP_NO_BPF_LOOP); the loader picks one after probing.
NOLOOP := kxp_xdp kxp_tc
SKELS := $(patsubst bpf/%.bpf.c,$(BUILD)/%.skel.h,$(BPF_SRCS)) $(patsubst %,$(BUILD)/%_noloop.skel.h,$(NOLOOP))
BENCH_BPF_SRCS := $(wildcard bench/*.bpf.c)
BENCH_BPF_OBJS := $(patsubst bench/%.bpf.c,$(BUILD)/bench/%.bpf.o,$(BENCH_BPF_SRCS))

# Library: every userspace source but the CLI entry points.
LIB_SRCS := $(sort $(shell find userspace -name '*.c' ! -path 'userspace/cli/*'))
LIB_OBJS := $(patsubst %.c,$(BUILD)/%.o,$(LIB_SRCS))
CLI_SRCS := $(sort $(wildcard userspace/cli/*.c))
CLI_OBJS := $(patsubst %.c,$(BUILD)/%.o,$(CLI_SRCS))
HDRS := $(shell find include userspace bpf -name '*.h')

# Tests: one binary per suite (all its .c files), helpers one binary per file.
UNIT_SRCS := $(sort $(wildcard selftests/unit/*.c) selftests/lib/testlib.c)
BPFT_SRCS := $(sort $(wildcard selftests/bpf/*.c) selftests/lib/testlib.c)
HELPER_SRCS := $(sort $(wildcard selftests/helpers/*.c))
HELPERS := $(patsubst selftests/helpers/%.c,$(BUILD)/%,$(HELPER_SRCS))
BENCH_SRCS := $(filter-out %.bpf.c,$(sort $(wildcard bench/*.c)))
BENCH_BINS := $(patsubst bench/%.c,$(BUILD)/bench/%,$(BENCH_SRCS))

.PHONY: all deps demo test test-unit test-bpf test-e2e test-kernels bench bench-quick clean format image

all: $(BUILD)/kxp $(BUILD)/unit-tests $(BUILD)/bpf-tests $(HELPERS) $(BENCH_BINS) $(BENCH_BPF_OBJS)

deps:
	$(Q)missing=""; for p in $(DEB_PKGS); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "  DEPS    installing:$$missing"; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing >/dev/null || exit 1; \
	fi

$(BUILD)/%.bpf.o: bpf/%.bpf.c $(HDRS) | $(BUILD)
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) $(CLANG_BPF_SYS_INCLUDES) -c $< -o $@

$(BUILD)/%_noloop.bpf.o: bpf/%.bpf.c $(HDRS) | $(BUILD)
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -DKXP_NO_BPF_LOOP $(CLANG_BPF_SYS_INCLUDES) -c $< -o $@

$(BUILD)/bench/%.bpf.o: bench/%.bpf.c $(HDRS) | $(BUILD)
	$(call msg,BPF,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CLANG) $(BPF_CFLAGS) $(CLANG_BPF_SYS_INCLUDES) -c $< -o $@

$(BUILD)/%.skel.h: $(BUILD)/%.bpf.o
	$(call msg,GEN-SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< > $@

$(BUILD)/%.o: %.c $(HDRS) $(SKELS) | $(BUILD)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/libkxp.a: $(LIB_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(BUILD)/kxp: $(CLI_OBJS) $(BUILD)/libkxp.a
	$(call msg,BINARY,$@)
	$(Q)$(CC) $(CFLAGS) $(CLI_OBJS) $(BUILD)/libkxp.a $(LDLIBS) -o $@

$(BUILD)/unit-tests: $(patsubst %.c,$(BUILD)/%.o,$(UNIT_SRCS)) $(BUILD)/libkxp.a
	$(call msg,BINARY,$@)
	$(Q)$(CC) $(CFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/bpf-tests: $(patsubst %.c,$(BUILD)/%.o,$(BPFT_SRCS)) $(BUILD)/libkxp.a
	$(call msg,BINARY,$@)
	$(Q)$(CC) $(CFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/%: selftests/helpers/%.c $(HDRS) | $(BUILD)
	$(call msg,BINARY,$@)
	$(Q)$(CC) $(CFLAGS) $< $(LDLIBS) -o $@

$(BUILD)/bench/%: bench/%.c $(BUILD)/libkxp.a $(HDRS) | $(BUILD)
	$(call msg,BINARY,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) $< $(BUILD)/libkxp.a $(LDLIBS) -o $@

$(BUILD):
	$(Q)mkdir -p $@

# The user-facing entry points install their packages first, then build.
demo: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)KXP_BUILD=$(abspath $(BUILD)) bash selftests/e2e/demo.sh

test: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)KXP_BUILD=$(abspath $(BUILD)) bash selftests/run.sh

test-unit test-bpf test-e2e: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)KXP_BUILD=$(abspath $(BUILD)) bash selftests/run.sh $(patsubst test-%,%,$@)

# The kernel matrix: kxp's BPF suite and a namespace traffic test inside
# Debian's stock kernels under qemu (selftests/kernels/README.md).
test-kernels: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)KXP_BUILD=$(abspath $(BUILD)) bash selftests/kernels/run.sh

bench: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)KXP_BUILD=$(abspath $(BUILD)) bash bench/run.sh

bench-quick: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)KXP_BUILD=$(abspath $(BUILD)) bash bench/run.sh --quick

# The container image (deploy/Dockerfile) where a container engine answers; says so
# and fails where there is none (a docker client without a daemon counts as none).
IMAGE ?= kxp:latest
image:
	$(Q)if docker info >/dev/null 2>&1; then \
		docker build -f deploy/Dockerfile -t $(IMAGE) .; \
	elif command -v podman >/dev/null 2>&1 && podman info >/dev/null 2>&1; then \
		podman build -f deploy/Dockerfile -t $(IMAGE) .; \
	else \
		echo "make image: no container engine here (docker: $$(docker info 2>&1 | grep -m1 -i -e error -e cannot || echo not installed); podman: not usable)." >&2; \
		echo "make image: build elsewhere with: docker build -f deploy/Dockerfile -t $(IMAGE) ." >&2; \
		exit 1; \
	fi

format:
	clang-format -i $(shell find bpf include userspace selftests bench -name '*.[ch]')

clean:
	rm -rf $(BUILD)
