// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * vmm's command line: `vmm run`, `vmm monitor`, and the help.  This is the
 * only place that exits; everything below returns 0 or -errno.
 *
 * Exit statuses (vm.h has the numbers and why they are what they are):
 * `vmm run` ends with the guest's debug-exit status, 0 after `quit` or a
 * guest power-off, or one of vmm's own: VM_STATUS_USAGE (any command's bad
 * usage), VM_STATUS_SETUP, VM_STATUS_INCOMING, VM_STATUS_ERROR.  Ended by a
 * signal, vmm dies of that signal once it has cleaned up, so that a parent
 * sees a death by signal, never an exit status a guest could have written.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "migrate/client.h"
#include "migrate/incoming.h"
#include "migrate/migration.h"
#include "migrate/uri.h"
#include "vmm/console.h"
#include "vmm/log.h"
#include "vmm/linux.h"
#include "vmm/loop.h"
#include "vmm/monitor.h"
#include "vmm/mptable.h"
#include "vmm/multiboot.h"
#include "vmm/parse.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"

#define VMM_VERSION "0.1"

struct run_opts {
	uint64_t mem;
	int cpus;
	const char *image, *append, *module, *serial, *monitor_path, *incoming;
	const char *kernel, *initrd;	/* a Linux bzImage (--kernel, or IMAGE recognised as one) */
	int console_serial;		/* --console: 1 serial, 0 monitor, -1 not given */
	bool debugexit_qemu;
	bool no_stdin;
	bool ram_memfd;		/* --memory-backend memfd */
	const char *sets[16];	/* --set NAME=VALUE: migration parameters and capabilities */
	const char *tls_creds;	/* --tls-creds DIR: as --set tls-creds=DIR */
	int nsets;
};

struct run_ctx {
	struct vm *vm;
	struct loop *loop;
	struct console *con;
	int exit_status;
	int signo;		/* the signal that ended vmm, or 0 */
};

static void usage_main(FILE *f)
{
	fprintf(f,
		"usage: vmm COMMAND [ARGS]\n"
		"\n"
		"A minimal KVM virtual machine monitor that shows live migration plainly.\n"
		"\n"
		"commands:\n"
		"  run [OPTIONS] IMAGE         boot a multiboot v1 ELF32 image or a Linux bzImage\n"
		"  run --incoming URI [OPTS]   receive a migrating VM and run it\n"
		"  migrate [OPTIONS] URI       migrate a running vmm's VM (through its monitor)\n"
		"  monitor [unix:]PATH [CMD...]  talk to a running vmm's monitor socket\n"
		"  dump-state SNAPSHOT         the machine state of a file: snapshot, as a DTB\n"
		"  help [COMMAND]              this help, or a command's\n"
		"  version                     print the version\n"
		"\n"
		"'vmm COMMAND --help' shows a command's options and exit statuses.\n");
}

static void usage_run(FILE *f)
{
	fprintf(f,
		"usage: vmm run [OPTIONS] IMAGE\n"
		"       vmm run [OPTIONS] --kernel BZIMAGE [--initrd FILE] [--append CMDLINE]\n"
		"       vmm run [OPTIONS] --incoming URI\n"
		"\n"
		"Boot the multiboot v1 ELF32 IMAGE or a Linux bzImage (given as IMAGE or by\n"
		"--kernel) on KVM, or receive a migrating VM on URI\n"
		"(tcp:HOST:PORT, unix:PATH, or a file:PATH snapshot) and run it; the RAM\n"
		"size and vCPU count must match the source's.  The monitor reads commands\n"
		"from stdin (with readline on a terminal); 'help' lists them.\n"
		"\n"
		"options:\n"
		"  -m, --mem SIZE            guest RAM: 256 (MiB, as in QEMU), 256M, 1G (default 256M);\n"
		"                            2M to %lluG here (the host's %u physical address bits)\n"
		"  -c, --cpus N              vCPUs, 1 to %d (default 1)\n"
		"      --memory-backend TYPE ram: anonymous memory, huge pages where the host\n"
		"                            gives them (default); memfd: shared memory, all of it\n"
		"                            allocated at start (QEMU's memory-backend-memfd with\n"
		"                            prealloc=on); a postcopy destination on memfd places\n"
		"                            pages by UFFDIO_CONTINUE, without the kernel's copy"
		"  -a, --append TEXT         text after the image name on the guest command line;\n"
		"                            for Linux the whole command line (default console=ttyS0)\n"
		"      --module FILE         pass FILE as the multiboot module\n"
		"      --kernel BZIMAGE      boot Linux by its boot protocol; stdin is then the\n"
		"                            guest's serial console, Ctrl-A c switches to the\n"
		"                            monitor and back, Ctrl-A x quits (as QEMU's -nographic)\n"
		"      --initrd FILE         the initramfs for --kernel\n"
		"      --console MODE        what stdin is: serial (the guest's console, the default\n"
		"                            with --kernel; give it with --incoming for a Linux guest)\n"
		"                            or monitor (the default otherwise)\n"
		"      --serial DEST         COM1 output: stdio (default), file:PATH or none\n"
		"      --debug-exit MODE     native: exit status V (default);\n"
		"                            qemu: (V << 1) | 1, as QEMU's isa-debug-exit\n"
		"      --monitor [unix:]PATH[,mode=0660]  also serve the monitor on a unix socket\n"
		"                            (mode 0600 unless given; peers of this user only)\n"
		"      --incoming URI        wait for a migration instead of booting IMAGE\n"
		"  -s, --set NAME=VALUE      a migration parameter or capability, as migrate_set_parameter\n"
		"                            or migrate_set_capability would set it (e.g. peer-timeout=2000)\n"
		"      --tls-creds DIR       TLS on the migration's connections (as --set tls-creds=DIR):\n"
		"                            DIR/keys.psk, or DIR/ca-cert.pem with server-{cert,key}.pem and\n"
		"                            client-{cert,key}.pem (scripts/tls-creds makes test ones)\n"
		"  -n, --no-stdin            do not read monitor commands from stdin\n"
		"  -v, --verbose             debug messages\n"
		"  -h, --help                this help\n"
		"\n"
		"exit status:\n"
		"  0                 the guest powered off or wrote 0 (native), or 'quit'\n"
		"  V, or (V<<1)|1    the guest wrote V to the debug-exit port (native, qemu)\n"
		"  %-3d               bad usage\n"
		"  %-3d               the VM could not be set up (image, KVM, RAM, files)\n"
		"  %-3d               the incoming migration failed or was cancelled\n"
		"  %-3d               the VM stopped on an unexpected exit or a KVM failure\n"
		"  killed by signal N (a shell shows 128+N) when ended by SIGINT, SIGTERM or SIGHUP\n"
		"vmm's own statuses are even: with --debug-exit=qemu no guest status (always odd)\n"
		"can be mistaken for them.\n",
		(unsigned long long)(ram_max_size(ram_host_phys_bits()) >> 30), ram_host_phys_bits(),
		VM_MAX_CPUS, VM_STATUS_USAGE, VM_STATUS_SETUP, VM_STATUS_INCOMING, VM_STATUS_ERROR);
}

static void usage_monitor(FILE *f)
{
	fprintf(f,
		"usage: vmm monitor [unix:]PATH [COMMAND...]\n"
		"\n"
		"Connect to the monitor socket PATH of a vmm started with --monitor PATH.\n"
		"Each COMMAND argument is one monitor command (quote it); without any, read\n"
		"commands interactively.  Exit status: 0, 1 if a command failed, 2 bad usage\n"
		"or the connection failed.\n");
}

/*
 * -m: a bare number is MiB, as in QEMU and lkvm.  The RAM must end within
 * the host's physical address width, which KVM checks only when the slot
 * is added: refuse it here, before anything is set up.
 */
static int parse_mem(const char *arg, uint64_t *mem)
{
	uint64_t max = ram_max_size(ram_host_phys_bits());
	size_t n = strlen(arg);
	int ret = parse_size(arg, mem);

	if (!ret && n && arg[n - 1] >= '0' && arg[n - 1] <= '9') {
		if (*mem > (UINT64_MAX >> 20))
			ret = -ERANGE;
		*mem <<= 20;
	}
	if (ret || *mem < RAM_MIN_SIZE || *mem % PAGE_SIZE)
		return parse_usage_error("run", "bad --mem '%s': a size from 2M to %lluG, a multiple of 4K "
					 "(a bare number is MiB)", arg, (unsigned long long)(max >> 30));
	if (*mem > max)
		return parse_usage_error("run", "bad --mem '%s': at most %lluG on this host (its CPU has %u "
					 "physical address bits; RAM above 3G is placed from 4G)", arg,
					 (unsigned long long)(max >> 30), ram_host_phys_bits());
	return 0;
}

/* 1 after --help, 0, or -EINVAL after one error line (bad usage). */
static int parse_run_opts(int argc, char **argv, struct run_opts *o)
{
	enum { OPT_MODULE = 256, OPT_SERIAL, OPT_DEBUGEXIT, OPT_MONITOR, OPT_INCOMING, OPT_KERNEL, OPT_INITRD,
	       OPT_CONSOLE, OPT_BACKEND, OPT_TLS };
	static const struct option longopts[] = {
		{ "mem", required_argument, NULL, 'm' },
		{ "cpus", required_argument, NULL, 'c' },
		{ "memory-backend", required_argument, NULL, OPT_BACKEND },
		{ "append", required_argument, NULL, 'a' },
		{ "module", required_argument, NULL, OPT_MODULE },
		{ "kernel", required_argument, NULL, OPT_KERNEL },
		{ "initrd", required_argument, NULL, OPT_INITRD },
		{ "console", required_argument, NULL, OPT_CONSOLE },
		{ "serial", required_argument, NULL, OPT_SERIAL },
		{ "debug-exit", required_argument, NULL, OPT_DEBUGEXIT },
		{ "monitor", required_argument, NULL, OPT_MONITOR },
		{ "incoming", required_argument, NULL, OPT_INCOMING },
		{ "set", required_argument, NULL, 's' },
		{ "tls-creds", required_argument, NULL, OPT_TLS },
		{ "no-stdin", no_argument, NULL, 'n' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char path[MONITOR_PATH_MAX], err[256];
	struct uri uri;
	uint64_t v;
	int c;

	*o = (struct run_opts){ .mem = 256ULL << 20, .cpus = 1, .serial = "stdio", .console_serial = -1 };
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":m:c:a:s:nvh", longopts, NULL)) != -1) {
		switch (c) {
		case 'm':
			if (parse_mem(optarg, &o->mem))
				return -EINVAL;
			break;
		case 'c':
			if (parse_u64(optarg, &v) || v < 1 || v > VM_MAX_CPUS)
				return parse_usage_error("run", "bad --cpus '%s': 1 to %d", optarg, VM_MAX_CPUS);
			o->cpus = (int)v;
			break;
		case OPT_BACKEND:
			if (strcmp(optarg, "ram") && strcmp(optarg, "memfd"))
				return parse_usage_error("run", "bad --memory-backend '%s': ram or memfd", optarg);
			o->ram_memfd = !strcmp(optarg, "memfd");
			break;
		case 'a': o->append = optarg; break;
		case OPT_MODULE: o->module = optarg; break;
		case OPT_KERNEL: o->kernel = optarg; break;
		case OPT_INITRD: o->initrd = optarg; break;
		case OPT_CONSOLE:
			if (strcmp(optarg, "serial") && strcmp(optarg, "monitor"))
				return parse_usage_error("run", "bad --console '%s': serial or monitor", optarg);
			o->console_serial = !strcmp(optarg, "serial");
			break;
		case OPT_SERIAL:
			if (strcmp(optarg, "stdio") && strcmp(optarg, "none") && strncmp(optarg, "file:", 5))
				return parse_usage_error("run", "bad --serial '%s': stdio, file:PATH or none", optarg);
			o->serial = optarg;
			break;
		case OPT_DEBUGEXIT:
			if (!strcmp(optarg, "qemu"))
				o->debugexit_qemu = true;
			else if (strcmp(optarg, "native"))
				return parse_usage_error("run", "bad --debug-exit '%s': native or qemu", optarg);
			break;
		case OPT_MONITOR:
			/* Checked now, parsed again by monitor_listen(): one parser, errors before any setup. */
			if (monitor_parse_address(optarg, path, sizeof(path), &(unsigned){ 0 })) {
				parse_usage_hint("run");
				return -EINVAL;
			}
			o->monitor_path = optarg;
			break;
		case OPT_INCOMING:
			if (uri_parse(optarg, &uri, err, sizeof(err)))
				return parse_usage_error("run", "bad --incoming: %s", err);
			o->incoming = optarg;
			break;
		case OPT_TLS:
			o->tls_creds = optarg;
			break;
		case 's':
			if (o->nsets == 16 || !strchr(optarg, '=') || optarg[0] == '=')
				return parse_usage_error("run", "bad --set '%s': NAME=VALUE (at most 16)", optarg);
			o->sets[o->nsets++] = optarg;
			break;
		case 'n': o->no_stdin = true; break;
		case 'v': log_level = LOG_DEBUG; break;
		case 'h': usage_run(stdout); return 1;
		default: return parse_option_error("run", c, argv);
		}
	}
	if (o->incoming) {
		if (optind != argc || o->append || o->module || o->kernel || o->initrd)
			return parse_usage_error("run", "--incoming takes no IMAGE, --kernel, --initrd, --append "
						 "or --module: the VM comes from the source");
		o->console_serial = o->console_serial > 0;
		return 0;
	}
	if (o->kernel) {
		if (optind != argc)
			return parse_usage_error("run", "--kernel and an IMAGE ('%s'): give one", argv[optind]);
	} else if (optind == argc) {
		return parse_usage_error("run", "no IMAGE given (or --kernel BZIMAGE, or --incoming URI)");
	} else if (optind != argc - 1) {
		return parse_usage_error("run", "more than one IMAGE given: '%s', '%s'", argv[optind],
					 argv[optind + 1]);
	} else {
		o->image = argv[optind];
		/* A bzImage given as IMAGE boots as Linux; a file that cannot be read fails later, once. */
		if (linux_file_is_bzimage(o->image)) {
			o->kernel = o->image;
			o->image = NULL;
		}
	}
	if (o->kernel && o->module)
		return parse_usage_error("run", "--module is for multiboot images; Linux takes --initrd");
	if (o->initrd && !o->kernel)
		return parse_usage_error("run", "--initrd is for a Linux kernel (--kernel BZIMAGE)");
	if (o->console_serial < 0)
		o->console_serial = o->kernel != NULL;
	return 0;
}

/* --set NAME=VALUE: a parameter, or a capability (on/off), as the monitor would set it. */
static int apply_sets(struct migration *m, const struct run_opts *o)
{
	struct strbuf out = STRBUF_INIT;
	char name[64];
	int i, ret = 0;

	if (o->tls_creds)
		ret = migration_set(m, false, "tls-creds", o->tls_creds, &out);
	for (i = 0; !ret && i < o->nsets; i++) {
		const char *eq = strchr(o->sets[i], '=');

		snprintf(name, sizeof(name), "%.*s", (int)(eq - o->sets[i]), o->sets[i]);
		ret = migration_set(m, false, name, eq + 1, &out);
		if (ret && strstr(out.buf ? out.buf : "", "unknown parameter")) {
			strbuf_reset(&out);
			ret = migration_set(m, true, name, eq + 1, &out);
			if (ret && strstr(out.buf ? out.buf : "", "unknown capability")) {
				strbuf_reset(&out);
				strbuf_printf(&out, "unknown parameter or capability '%s' (vmm monitor's 'info "
					      "migrate_parameters' and 'info migrate_capabilities' list them)", name);
			}
		}
	}
	if (ret)
		error(ret, "bad --set: %s", out.buf ? out.buf : "?");
	strbuf_release(&out);
	return ret;
}

static int open_serial(const char *spec)
{
	int fd;

	if (!strcmp(spec, "stdio"))
		return STDOUT_FILENO;
	if (!strcmp(spec, "none"))
		return -1;
	fd = open(spec + 5, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return error_errno(-errno, "cannot open serial output %s", spec + 5) - 1;
	return fd;
}

/* The VM changed state: end the loop when it is over (or stay for inspection). */
static void on_vm_notify(void *opaque, int fd, short revents)
{
	struct run_ctx *ctx = opaque;
	char reason[256];
	uint64_t v;
	enum vm_state s;

	if (read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		return;
	s = vm_get_state(ctx->vm, &ctx->exit_status, reason, sizeof(reason));
	if (s == VM_STATE_SHUTDOWN) {
		debug("%s", reason);
		loop_stop(ctx->loop);
	} else if (s == VM_STATE_ERROR) {
		error(-EIO, "the VM stopped: %s", reason);
		if (console_is_interactive(ctx->con))
			info("the monitor stays up to inspect the VM ('info registers', 'x'); 'quit' ends vmm");
		else
			loop_stop(ctx->loop);
	}
}

static void on_signal(void *opaque, int fd, short revents)
{
	struct run_ctx *ctx = opaque;
	struct signalfd_siginfo si;

	if (read(fd, &si, sizeof(si)) != sizeof(si))
		return;
	if (si.ssi_signo == SIGINT && console_is_interactive(ctx->con)) {
		console_interrupt(ctx->con);
		return;
	}
	vm_request_exit(ctx->vm, 128 + (int)si.ssi_signo, "killed by signal %u", si.ssi_signo);
	ctx->exit_status = 128 + (int)si.ssi_signo;
	ctx->signo = (int)si.ssi_signo;
	loop_stop(ctx->loop);
}

/* The exit status; *signo is the signal that ended vmm (main() then dies of it), or 0. */
static int cmd_run(int argc, char **argv, int *signo)
{
	struct run_opts o;
	struct vm_config cfg;
	struct multiboot_entry mb;
	struct linux_entry lx;
	struct vm vm;
	struct loop loop;
	struct monitor mon;
	struct console con;
	struct migration *mig = NULL;
	struct run_ctx ctx = { &vm, &loop, &con, 0, 0 };
	sigset_t sigs;
	int ret, sfd = -1, serial_fd, status = VM_STATUS_SETUP;
	enum vm_state s;

	*signo = 0;
	ret = parse_run_opts(argc, argv, &o);
	if (ret)
		return ret > 0 ? 0 : VM_STATUS_USAGE;
	debug("%llu MiB of RAM, %d vCPU(s)", (unsigned long long)(o.mem >> 20), o.cpus);
	serial_fd = open_serial(o.serial);
	if (serial_fd < -1)
		return VM_STATUS_SETUP;
	cfg = (struct vm_config){ o.mem, o.cpus, o.debugexit_qemu, serial_fd, o.ram_memfd };

	/* Signals are read by the main loop; every thread inherits them blocked. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	loop_init(&loop);
	monitor_init(&mon, &vm, &loop);
	memset(&con, 0, sizeof(con));
	ret = vm_create(&vm, &cfg);
	if (ret)
		goto out;
	mig = migration_new(&vm);
	if (!mig) {
		ret = error(-ENOMEM, "out of memory");
		goto out;
	}
	migration_add_commands(mig, &mon);
	ret = apply_sets(mig, &o);
	if (ret)
		goto out;
	if (o.kernel) {
		ret = linux_load_file(&vm.ram, o.kernel, o.initrd, o.append ? o.append : LINUX_DEFAULT_CMDLINE, &lx);
		if (!ret)
			ret = mptable_write(&vm.ram, o.cpus);
		if (ret)
			goto out;
		debug("Linux boot protocol %u.%02u, entry 0x%x, zero page 0x%x, initrd at 0x%llx", lx.version >> 8,
		      lx.version & 0xff, lx.entry, lx.boot_params, (unsigned long long)lx.initrd_gpa);
	} else if (!o.incoming) {
		ret = multiboot_load_file(&vm.ram, o.image, o.append, o.module, &mb);
		if (ret)
			goto out;
		debug("entry 0x%x, boot information at 0x%x, image ends at 0x%llx", mb.entry, mb.info,
		      (unsigned long long)mb.image_end);
	}
	ret = vm_setup_kvm(&vm);
	if (ret)
		goto out;
	if (o.kernel) {
		struct vcpu_entry32 e = { .eip = lx.entry, .esi = lx.boot_params, .cs = LINUX_BOOT_CS,
					  .ds = LINUX_BOOT_DS, .gdt_base = LINUX_GDT_GPA, .gdt_limit = 4 * 8 - 1 };

		ret = vcpu_set_entry32(&vm.vcpus[0], &e);
	} else if (!o.incoming) {
		struct vcpu_entry32 e = { .eip = mb.entry, .eax = MULTIBOOT_BOOTLOADER_MAGIC, .ebx = mb.info,
					  .cs = 0x08, .ds = 0x10 };

		ret = vcpu_set_entry32(&vm.vcpus[0], &e);
	}
	if (ret)
		goto out;
	if (o.monitor_path && (ret = monitor_listen(&mon, o.monitor_path)))
		goto out;
	sfd = signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0 || loop_add(&loop, sfd, POLLIN, on_signal, &ctx) ||
	    loop_add(&loop, vm.notify_fd, POLLIN, on_vm_notify, &ctx)) {
		ret = error(-EIO, "cannot set up the event loop");
		goto out;
	}
	ret = console_init(&con, &mon, &loop, !o.no_stdin, o.console_serial ? &vm.uart : NULL);
	if (ret) {
		error_errno(ret, "cannot set up the terminal");
		goto out;
	}
	/* The destination starts its vCPUs once the migration has brought the state. */
	ret = o.incoming ? migration_start_incoming(mig, o.incoming) : vm_start(&vm);
	if (ret)
		goto out;
	ret = loop_run(&loop);
	if (ret)
		error_errno(ret, "poll");
	s = vm_get_state(&vm, &status, NULL, 0);
	if (s != VM_STATE_SHUTDOWN && s != VM_STATE_ERROR)
		status = ctx.exit_status;
out:
	migration_free(mig);
	vm_destroy(&vm);
	console_destroy(&con);
	monitor_destroy(&mon);
	if (sfd >= 0)
		close(sfd);
	if (serial_fd > STDOUT_FILENO)
		close(serial_fd);
	*signo = ctx.signo;
	return status;
}

/*
 * End as the signal would have, now that everything is cleaned up: the
 * parent sees a death by signal (a shell shows 128+N), never an exit status
 * that a guest's debug-exit could also have given.
 */
static int die_of_signal(int signo, int status)
{
	sigset_t set;

	fflush(stdout);
	signal(signo, SIG_DFL);
	sigemptyset(&set);
	sigaddset(&set, signo);
	raise(signo);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	return status;
}

static int cmd_monitor(int argc, char **argv)
{
	if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		usage_monitor(stdout);
		return 0;
	}
	if (argc < 2 || argv[1][0] == '-') {
		if (argc < 2)
			parse_usage_error("monitor", "no monitor socket given");
		else
			parse_usage_error("monitor", "unknown option '%s'", argv[1]);
		return VM_STATUS_USAGE;
	}
	return monitor_client(argv[1], argc - 2, argv + 2);
}

static void usage_dump_state(FILE *f)
{
	fprintf(f,
		"usage: vmm dump-state SNAPSHOT > state.dtb\n"
		"\n"
		"Write the machine state saved in a file: snapshot as a device tree blob\n"
		"(read it with: dtc -I dtb -O dts state.dtb).  Exit status: 0, 1 if the\n"
		"snapshot cannot be read, 2 bad usage.\n");
}

static int cmd_dump_state(int argc, char **argv)
{
	if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		usage_dump_state(stdout);
		return 0;
	}
	if (argc != 2 || argv[1][0] == '-') {
		parse_usage_error("dump-state", "%s", argc == 1 ? "no SNAPSHOT given" :
				  argc > 2 ? "one SNAPSHOT only" : "unknown option");
		return VM_STATUS_USAGE;
	}
	if (isatty(STDOUT_FILENO)) {
		error(-EINVAL, "the state is binary: redirect it to a file or pipe it to dtc -I dtb -O dts");
		return VM_STATUS_USAGE;
	}
	return incoming_dump_state(argv[1], STDOUT_FILENO) ? 1 : 0;
}

/* `vmm help [COMMAND]`, `vmm COMMAND --help`: a command's help on stdout. */
static int cmd_help(const char *topic)
{
	char a0[] = "migrate", a1[] = "--help", *args[] = { a0, a1, NULL };

	if (!topic || !strcmp(topic, "help") || !strcmp(topic, "--help") || !strcmp(topic, "-h"))
		usage_main(stdout);
	else if (!strcmp(topic, "run"))
		usage_run(stdout);
	else if (!strcmp(topic, "monitor"))
		usage_monitor(stdout);
	else if (!strcmp(topic, "migrate"))
		return migrate_client(2, args);
	else if (!strcmp(topic, "dump-state"))
		usage_dump_state(stdout);
	else if (!strcmp(topic, "version"))
		printf("usage: vmm version\n\nPrint vmm's version.\n");
	else {
		error(-EINVAL, "no command '%s' ('vmm help' lists them)", topic);
		return VM_STATUS_USAGE;
	}
	return 0;
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : NULL;
	int signo, status;

	if (!cmd) {
		usage_main(stderr);
		return VM_STATUS_USAGE;
	}
	if (!strcmp(cmd, "run")) {
		status = cmd_run(argc - 1, argv + 1, &signo);
		return signo ? die_of_signal(signo, status) : status;
	}
	if (!strcmp(cmd, "monitor"))
		return cmd_monitor(argc - 1, argv + 1);
	if (!strcmp(cmd, "migrate"))
		return migrate_client(argc - 1, argv + 1);
	if (!strcmp(cmd, "dump-state"))
		return cmd_dump_state(argc - 1, argv + 1);
	if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
		if (argc > 2)
			return cmd_help("version");
		printf("vmm %s\n", VMM_VERSION);
		return 0;
	}
	if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
		if (argc > 3) {
			parse_usage_error("help", "one COMMAND at most");
			return VM_STATUS_USAGE;
		}
		return cmd_help(argc > 2 ? argv[2] : NULL);
	}
	error(-EINVAL, "unknown command '%s' ('vmm help' lists them)", cmd);
	return VM_STATUS_USAGE;
}
