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
LDLIBS   += -lreadline -lpthread -lfdt -lxxhash -lseccomp

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

.PHONY: all guest unit asan check clean install help
all: $(BUILD)/vmm guest unit $(BUILD)/bench/floors

help:
	@echo 'make            build build/vmm, guest/guest.img and the unit tests'
	@echo 'make check      install dependencies, build, run every test (real KVM'
	@echo '                natively or through scripts/kvm-sandbox)'
	@echo 'make asan       build build/vmm-asan and the unit tests with ASan+UBSan'
	@echo 'make demo       the live migration demo'
	@echo 'make bench      the migration benchmark against the floors (up to 30 min; real'
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

guest:
	$(Q)$(MAKE) --no-print-directory -C guest

# make check installs what it needs first: a fresh machine has nothing.
check:
	$(Q)scripts/install-deps
	$(Q)$(MAKE) --no-print-directory all asan
	$(Q)scripts/check

demo:
	$(Q)scripts/install-deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)scripts/demo

PREFIX ?= /usr/local
install: $(BUILD)/vmm
	install -D -m 0755 $(BUILD)/vmm $(DESTDIR)$(PREFIX)/bin/vmm

clean:
	rm -rf $(BUILD)
	$(Q)$(MAKE) --no-print-directory -C guest clean

include bench/Makefile

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
