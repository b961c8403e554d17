# vmm: a minimal KVM VMM that demonstrates live migration.
# Plain GNU make.  Objects go to build/, the binary is build/vmm (the source
# directory is vmm/, so the binary cannot live at ./vmm).  Quiet unless V=1.
# WERROR=0 turns -Werror off.

.DELETE_ON_ERROR:
.SUFFIXES:

BUILD   ?= build
CC      ?= cc
WERROR  ?= 1
V       ?= 0

ifeq ($(V),0)
Q = @
say = @printf '  %-7s %s\n' $(1) $(2);
else
Q =
say =
endif

WARNINGS := -Wall -Wextra -Wformat=2 -Wmissing-prototypes -Wstrict-prototypes \
	-Wundef -Wwrite-strings -Wold-style-definition -Wshadow -Wpointer-arith \
	-Wvla -Wmissing-declarations -Wredundant-decls -Wno-unused-parameter
ifeq ($(WERROR),1)
WARNINGS += -Werror
endif

CPPFLAGS += -I. -D_GNU_SOURCE
CFLAGS   ?= -O2 -g
CFLAGS   += -std=gnu11 $(WARNINGS) -pthread -MMD -MP
LDLIBS   += -lreadline -lpthread -lfdt -lxxhash -lseccomp -lgnutls

SAN_FLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer \
	-fno-sanitize-recover=undefined

VMM_SRCS := $(wildcard vmm/*.c) $(wildcard migrate/*.c)
LIB_SRCS := $(filter-out vmm/main.c,$(VMM_SRCS))
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_NAMES := $(patsubst tests/unit/%.c,%,$(UNIT_SRCS))

VMM_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(VMM_SRCS))
LIB_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(LIB_SRCS))
SAN_LIB_OBJS := $(patsubst %.c,$(BUILD)/asan/%.o,$(LIB_SRCS))

UNIT_BINS := $(addprefix $(BUILD)/tests/,$(UNIT_NAMES))
SAN_UNIT_BINS := $(addprefix $(BUILD)/asan/tests/,$(UNIT_NAMES))

.PHONY: all guest unit asan check clean install help fuzz fuzz-build fuzz-corpus linux-guest demo demo-linux
all: $(BUILD)/vmm guest unit $(BUILD)/bench/floors

help:
	@echo 'make            build build/vmm, guest/guest.img and the unit tests'
	@echo 'make check      install dependencies, build, run every test (real KVM'
	@echo '                natively or through scripts/kvm-sandbox)'
	@echo 'make asan       build build/vmm-asan and the unit tests with ASan+UBSan'
	@echo 'make fuzz       build the libFuzzer targets (clang) and run each FUZZ_SECONDS (60) on its'
	@echo '                corpus; crashes are kept in tests/fuzz/crashes/ (docs/fuzzing.md)'
	@echo 'make linux-guest  build/linux-guest: the Debian kernel and an initramfs (busybox, memtouch)'
	@echo 'make demo       the live migration demo'
	@echo 'make demo-linux the same with a real Linux guest (Debian kernel, busybox)'
	@echo 'make bench      the migration benchmark against the floors and QEMU (up to 45 min; real'
	@echo '                KVM natively or through scripts/kvm-sandbox): bench/results/LATEST.md'
	@echo 'make bench-quick  the same in a few minutes (256 MiB, 3 workloads)'
	@echo 'make install    install build/vmm as $(PREFIX)/bin/vmm'
	@echo 'V=1 verbose, WERROR=0 warnings are not errors'

$(BUILD)/vmm: $(VMM_OBJS)
	$(call say,LD,$@)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(call say,CC,$<)$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(BUILD)/asan/%.o: %.c
	@mkdir -p $(dir $@)
	$(call say,CC-SAN,$<)$(CC) $(CPPFLAGS) $(CFLAGS) $(SAN_FLAGS) -c -o $@ $<

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(call say,LD,$@)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/asan/tests/%: $(BUILD)/asan/tests/unit/%.o $(SAN_LIB_OBJS)
	@mkdir -p $(dir $@)
	$(call say,LD-SAN,$@)$(CC) $(CFLAGS) $(SAN_FLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/vmm-asan: $(patsubst %.c,$(BUILD)/asan/%.o,$(VMM_SRCS))
	$(call say,LD-SAN,$@)$(CC) $(CFLAGS) $(SAN_FLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

unit: $(UNIT_BINS)
asan: $(BUILD)/vmm-asan $(SAN_UNIT_BINS)

# Fuzzing (docs/fuzzing.md): each tests/fuzz/fuzz_NAME.c is a libFuzzer
# target over the project's own objects, built again with clang, ASan, UBSan
# and the fuzzer's coverage into build/fuzz/.  The seed corpora are written
# by the project's own writers (tests/fuzz/gen_corpus.c, make fuzz-corpus).
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_SAN     := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
# The project's warnings, less one clang has and gcc lacks: a struct kvm_msrs
# followed by its entries (state.c) is the GNU extension KVM's ABI is used with.
FUZZ_WARN    := -Wno-gnu-variable-sized-type-not-at-end
FUZZ_NAMES   := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS    := $(addprefix $(BUILD)/fuzz/fuzz_,$(FUZZ_NAMES))
FUZZ_OBJS    := $(patsubst %.c,$(BUILD)/fuzz/obj/%.o,$(LIB_SRCS) tests/fuzz/feed.c)

$(BUILD)/fuzz/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(call say,CC-FUZZ,$<)$(FUZZ_CC) $(CPPFLAGS) $(CFLAGS) $(FUZZ_WARN) $(FUZZ_SAN) -fsanitize=fuzzer-no-link -c -o $@ $<

$(BUILD)/fuzz/libvmm.a: $(FUZZ_OBJS)
	$(call say,AR,$@)rm -f $@ && ar rcs $@ $^

$(BUILD)/fuzz/fuzz_%: $(BUILD)/fuzz/obj/tests/fuzz/fuzz_%.o $(BUILD)/fuzz/libvmm.a
	$(call say,LD-FUZZ,$@)$(FUZZ_CC) $(CFLAGS) $(FUZZ_SAN) -fsanitize=fuzzer $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/fuzz/gen_corpus: $(BUILD)/obj/tests/fuzz/gen_corpus.o $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(call say,LD,$@)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

fuzz-build: $(FUZZ_BINS)
.SECONDARY: $(patsubst %,$(BUILD)/fuzz/obj/tests/fuzz/fuzz_%.o,$(FUZZ_NAMES)) $(BUILD)/obj/tests/fuzz/gen_corpus.o

# FUZZ_SECONDS per target (FUZZ=NAME... for some of them only).
fuzz: fuzz-build
	$(Q)tests/fuzz/run --seconds $(FUZZ_SECONDS) $(FUZZ)

# Write the seed corpora again (tests/fuzz/corpus/NAME/), from the project's writers.
fuzz-corpus: $(BUILD)/fuzz/gen_corpus guest
	$(Q)$(BUILD)/fuzz/gen_corpus tests/fuzz/corpus guest/guest.img

guest:
	$(Q)$(MAKE) --no-print-directory -C guest

# The Linux guest: Debian's kernel and our initramfs (docs/linux-guest.md).
linux-guest:
	$(Q)scripts/linux-guest

# make check installs what it needs first: a fresh machine has nothing.
check:
	$(Q)scripts/install-deps
	$(Q)$(MAKE) --no-print-directory all asan linux-guest
	$(Q)scripts/check

demo:
	$(Q)scripts/install-deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)scripts/demo

# The same with a real Linux guest (Debian's kernel, a busybox initramfs).
demo-linux:
	$(Q)scripts/install-deps
	$(Q)$(MAKE) --no-print-directory all linux-guest
	$(Q)scripts/demo-linux

PREFIX ?= /usr/local
install: $(BUILD)/vmm
	install -D -m 0755 $(BUILD)/vmm $(DESTDIR)$(PREFIX)/bin/vmm

clean:
	rm -rf $(BUILD)
	$(Q)$(MAKE) --no-print-directory -C guest clean

include bench/Makefile

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
