// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * main.c - boot order, the simple modes, and the way out.
 *
 * guest_main installs the exception handlers before anything that could
 * fault, calibrates the TSC (every mode may need time, and nothing is
 * printed about it so that "hello" reads the same on any host), then runs
 * the mode named on the command line.  APs are started only by the modes
 * that use them (info, dirty), so hello, exit and fault work on a host
 * whose SMP support is not there yet.
 */
#include <stdint.h>

#include "arch.h"
#include "boot.h"
#include "cmdline.h"
#include "dirty.h"
#include "fwcfg.h"
#include "guest.h"
#include "layout.h"
#include "lib.h"
#include "serial.h"
#include "smp.h"
#include "trap.h"
#include "tsc.h"

#define EXIT_PORT_VMM	0xf4
#define EXIT_PORT_QEMU	0x501

struct mode {
	const char *name;
	int (*run)(int argc, char **argv);
};

noreturn void guest_exit(unsigned v)
{
	outb(EXIT_PORT_VMM, (uint8_t)v);
	outb(EXIT_PORT_QEMU, (uint8_t)v);
	for (;;)
		__asm__ volatile("cli; hlt");
}

static void mode_no_args(int argc, char **argv)
{
	if (argc > 1)
		cmdline_bad(argv[1]);
}

static int mode_hello(int argc, char **argv)
{
	mode_no_args(argc, argv);
	serial_printf("hello: vmm test guest ready\n");
	return GUEST_EXIT_OK;
}

static int mode_info(int argc, char **argv)
{
	uint32_t lower, upper, type;
	uint64_t base, len, ram = 0;
	unsigned cpus = fwcfg_cpus();

	mode_no_args(argc, argv);
	smp_init(cpus);
	serial_printf("info: cpus=%u online=%u fwcfg=%s\n", cpus, smp_cpus(),
		      fwcfg_present() ? "yes" : "no");
	if (boot_mem(&lower, &upper))
		serial_printf("info: mem_lower=%uK mem_upper=%uK ram=%uM\n",
			      lower, upper, (upper + 1024) / 1024);
	for (unsigned i = 0; boot_mmap_entry(i, &base, &len, &type); i++) {
		serial_printf("info: mmap 0x%016lx-0x%016lx type=%u\n",
			      base, base + len, type);
		if (type == 1)
			ram += len;
	}
	serial_printf("info: mmap ram=%luM\n", ram >> 20);
	serial_printf("info: image=0x%016lx-0x%016lx\n",
		      (uint64_t)IMAGE_GPA, boot_image_end());
	serial_printf("info: tsc=%luMHz calibrated=%s\n", tsc_hz() / 1000000,
		      tsc_calibrated() ? "pit" : "no");
	serial_printf("info: cmdline='%s'\n", boot_cmdline());
	return GUEST_EXIT_OK;
}

static int mode_exit(int argc, char **argv)
{
	uint64_t code = 0;
	const char *v;

	for (int i = 1; i < argc; i++)
		if (!cmdline_key(argv[i], "code", &v) ||
		    !cmdline_number(v, &code) || code > 255)
			cmdline_bad(argv[i]);
	serial_printf("exit: %lu\n", code);
	return (int)code;
}

static int mode_fault(int argc, char **argv)
{
	mode_no_args(argc, argv);
	serial_printf("fault: triple fault\n");
	trap_triple_fault();
}

static const struct mode modes[] = {
	{ "hello", mode_hello },
	{ "info", mode_info },
	{ "exit", mode_exit },
	{ "fault", mode_fault },
	{ "dirty", dirty_main },
};

void guest_main(void)
{
	static char hello[] = "hello";
	char *argv[CMDLINE_MAX_WORDS];
	int argc;

	trap_init();
	tsc_calibrate();
	argc = cmdline_split(boot_cmdline(), argv);
	if (!argc) {
		argv[0] = hello;
		argc = 1;
	}
	for (unsigned i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
		if (!strcmp(argv[0], modes[i].name))
			guest_exit((unsigned)modes[i].run(argc, argv));
	cmdline_bad(argv[0]);
}
