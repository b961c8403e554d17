// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The monitor's commands and its unix-socket server.  Commands run on the
 * main thread; a command that needs consistent vCPU state pauses the VM
 * around its work (vm_pause/vm_resume), so it never reads registers from a
 * vCPU inside KVM_RUN.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <readline/history.h>
#include <readline/readline.h>

#include "vmm/log.h"
#include "vmm/monitor.h"
#include "vmm/parse.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"

#define MONITOR_MAX_ARGS	16
#define X_MAX_LEN		4096

int monitor_error(struct strbuf *out, int err, const char *fmt, ...)
{
	va_list ap;
	char msg[512];

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	strbuf_printf(out, "error: %s\n", msg);
	return err;
}

/* Whether @word is one of the bar-separated @names ("cont|c"). */
static bool name_is(const char *names, const char *word)
{
	size_t n = strlen(word);
	const char *p;

	for (p = names; p; p = strchr(p, '|') ? strchr(p, '|') + 1 : NULL)
		if (n && !strncmp(p, word, n) && (p[n] == '|' || !p[n]))
			return true;
	return false;
}

static const struct monitor_cmd *monitor_find(struct monitor *mon, const char *name)
{
	int t;
	const struct monitor_cmd *c;

	for (t = 0; t < mon->ntables; t++)
		for (c = mon->tables[t]; c->name; c++)
			if (name_is(c->name, name))
				return c;
	return NULL;
}

static int cmd_help(struct monitor *mon, int argc, char **argv, struct strbuf *out)
{
	const struct monitor_cmd *c;
	int t;

	if (argc > 1) {
		c = monitor_find(mon, argv[1]);
		if (!c)
			return monitor_error(out, -ENOENT, "unknown command '%s'", argv[1]);
		strbuf_printf(out, "%s %s\n    %s\n", c->name, c->args, c->help);
		return 0;
	}
	for (t = 0; t < mon->ntables; t++)
		for (c = mon->tables[t]; c->name; c++)
			strbuf_printf(out, "%-24s %s\n", c->args[0] ? c->name : c->name, c->help);
	strbuf_printf(out, "'help COMMAND' shows a command's arguments.\n");
	return 0;
}


static int info_status(struct monitor *mon, int argc, char **argv, struct strbuf *out)
{
	char reason[256];
	int status;
	enum vm_state s = vm_get_state(mon->vm, &status, reason, sizeof(reason));

	strbuf_printf(out, "VM status: %s", vm_state_name(s));
	if (s == VM_STATE_SHUTDOWN || s == VM_STATE_ERROR)
		strbuf_printf(out, " (%s; exit status %d)", reason, status);
	else if (s == VM_STATE_PAUSED && reason[0])
		strbuf_printf(out, " (%s)", reason);
	strbuf_printf(out, "\n");
	return 0;
}

static int info_cpus(struct monitor *mon, int argc, char **argv, struct strbuf *out)
{
	int i;

	if (vm_pause_timed(mon->vm, VM_PAUSE_TIMEOUT_MS)) {
		/* A vCPU blocked on a postcopy page does not stop: say which, without registers. */
		strbuf_printf(out, "a vCPU does not stop, so no registers; each vCPU:\n");
		vm_describe_running_cpus(mon->vm, out);
		return 0;
	}
	for (i = 0; i < mon->vm->ncpus; i++)
		vm_describe_cpu(mon->vm, i, out);
	vm_resume(mon->vm);
	return 0;
}

/* info registers [-a | CPU]: QEMU's -a (every vCPU) and vCPU index; without either, every vCPU too. */
static int info_registers(struct monitor *mon, int argc, char **argv, struct strbuf *out)
{
	uint64_t cpu = 0;
	int i, first = 0, last = mon->vm->ncpus - 1;

	if (argc > 3)
		return monitor_error(out, -EINVAL, "usage: info registers [-a | CPU]");
	if (argc == 3 && strcmp(argv[2], "-a")) {
		if (parse_u64(argv[2], &cpu) || cpu >= (uint64_t)mon->vm->ncpus)
			return monitor_error(out, -EINVAL, "no CPU '%s' (the VM has %d; -a: all)", argv[2],
					     mon->vm->ncpus);
		first = last = (int)cpu;
	}
	if (vm_pause_timed(mon->vm, VM_PAUSE_TIMEOUT_MS))
		return monitor_error(out, -ETIMEDOUT, "a vCPU does not stop (blocked on a missing page?)");
	for (i = first; i <= last; i++)
		vcpu_dump(&mon->vm->vcpus[i], out);
	vm_resume(mon->vm);
	return 0;
}

static int info_ram(struct monitor *mon, int argc, char **argv, struct strbuf *out)
{
	const struct ram *ram = &mon->vm->ram;
	int i;

	strbuf_printf(out, "RAM: %llu MiB in %d slot(s)\n", (unsigned long long)(ram->size >> 20), ram->nslots);
	for (i = 0; i < ram->nslots; i++)
		strbuf_printf(out, "  slot %d: gpa 0x%016llx-0x%016llx (%llu MiB)\n", i,
			      (unsigned long long)ram->slot[i].gpa,
			      (unsigned long long)(ram->slot[i].gpa + ram->slot[i].size - 1),
			      (unsigned long long)(ram->slot[i].size >> 20));
	return 0;
}

static const struct monitor_cmd *monitor_find_info(struct monitor *mon, const char *topic)
{
	const struct monitor_cmd *c;
	int t;

	for (t = 0; t < mon->ninfo; t++)
		for (c = mon->info_tables[t]; c->name; c++)
			if (name_is(c->name, topic))
				return c;
	return NULL;
}

static void info_list(struct monitor *mon, struct strbuf *out)
{
	const struct monitor_cmd *c;
	int t;

	for (t = 0; t < mon->ninfo; t++)
		for (c = mon->info_tables[t]; c->name; c++)
			strbuf_printf(out, "%s%s", t || c != mon->info_tables[0] ? ", " : "", c->name);
}

static int cmd_info(struct monitor *mon, int argc, char **argv, struct strbuf *out)
{
	const struct monitor_cmd *c = argc > 1 ? monitor_find_info(mon, argv[1]) : NULL;

	if (!c) {
		struct strbuf topics = STRBUF_INIT;
		int ret;

		info_list(mon, &topics);
		if (argc < 2)
			ret = monitor_error(out, -EINVAL, "info what? (%s)", topics.buf);
		else
			ret = monitor_error(out, -EINVAL, "unknown info topic '%s' (%s)", argv[1], topics.buf);
		strbuf_release(&topics);
		return ret;
	}
	return c->fn(mon, argc, argv, out);
}

/* While postcopy pages are missing, reading one would block the monitor until it came. */
static bool ram_present(struct monitor *mon, const uint8_t *p, uint64_t len)
{
	uintptr_t start = (uintptr_t)p & ~(uintptr_t)(PAGE_SIZE - 1);
	size_t n = ((uintptr_t)p + len - start + PAGE_SIZE - 1) / PAGE_SIZE, i;
	unsigned char vec[X_MAX_LEN / PAGE_SIZE + 2];

	if (!__atomic_load_n(&mon->vm->ram_incomplete, __ATOMIC_ACQUIRE))
		return true;
	if (n > sizeof(vec) || mincore((void *)start, n * PAGE_SIZE, vec) < 0)
		return false;
	for (i = 0; i < n; i++)
		if (!(vec[i] & 1))
			return false;
	return true;
}

/* x ADDR [LEN]: vmm's own form, LEN bytes of guest-physical memory as hex and text. */
static int x_bytes(struct monitor *mon, int argc, char **argv, struct strbuf *out)
{
	uint64_t gpa, len = 64, off;
	const uint8_t *p;

	if (argc < 2 || argc > 3)
		return monitor_error(out, -EINVAL, "usage: x ADDR [LEN], or QEMU's x /FMT ADDR");
	if (parse_u64(argv[1], &gpa))
		return monitor_error(out, -EINVAL, "bad address '%s'", argv[1]);
	if (argc == 3 && (parse_size(argv[2], &len) || len == 0 || len > X_MAX_LEN))
		return monitor_error(out, -EINVAL, "bad length '%s' (1 to %d)", argv[2], X_MAX_LEN);
	p = ram_gpa_to_hva(&mon->vm->ram, gpa, len);
	if (!p)
		return monitor_error(out, -EFAULT, "0x%llx+%llu is not guest RAM",
				     (unsigned long long)gpa, (unsigned long long)len);
	if (!ram_present(mon, p, len))
		return monitor_error(out, -EAGAIN, "0x%llx+%llu has not arrived yet (postcopy)",
				     (unsigned long long)gpa, (unsigned long long)len);
	for (off = 0; off < len; off += 16) {
		uint64_t i, n = len - off < 16 ? len - off : 16;

		strbuf_printf(out, "%016llx:", (unsigned long long)(gpa + off));
		for (i = 0; i < 16; i++) {
			if (i < n)
				strbuf_printf(out, " %02x", p[off + i]);
			else
				strbuf_printf(out, "   ");
		}
		strbuf_printf(out, "  ");
		for (i = 0; i < n; i++)
			strbuf_printf(out, "%c", isprint(p[off + i]) ? p[off + i] : '.');
		strbuf_printf(out, "\n");
	}
	return 0;
}

/* QEMU's /FMT of x and xp: /[COUNT][FORMAT][SIZE]; without one, /1xw (QEMU's first default). */
struct x_format {
	uint64_t count;
	char format;		/* x d u o c */
	unsigned int size;	/* b h w g: 1 2 4 8 */
};

static int x_parse_format(const char *s, struct x_format *f, struct strbuf *out)
{
	const char *p = s + 1;
	char *end;

	*f = (struct x_format){ .count = 1, .format = 'x', .size = 4 };
	if (isdigit((unsigned char)*p)) {
		errno = 0;
		f->count = strtoull(p, &end, 10);
		if (errno || !f->count)
			return monitor_error(out, -EINVAL, "bad count in '%s'", s);
		p = end;
	}
	for (; *p; p++) {
		if (strchr("xduoc", *p))
			f->format = *p;
		else if (strchr("bhwg", *p))
			f->size = *p == 'b' ? 1 : *p == 'h' ? 2 : *p == 'w' ? 4 : 8;
		else if (*p == 'i')
			return monitor_error(out, -ENOTSUP, "/i (disassembly) is not supported here: use /x");
		else
			return monitor_error(out, -EINVAL, "bad format '%s': /[COUNT][x|d|u|o|c][b|h|w|g], e.g. /8xb", s);
	}
	if (f->count > X_MAX_LEN / f->size)
		return monitor_error(out, -E2BIG, "'%s' is more than %d bytes", s, X_MAX_LEN);
	return 0;
}

/*
 * Copy @len bytes at @addr into @buf: guest-physical, or (@virt) guest-
 * virtual through vCPU 0's page tables, page by page, as QEMU's x reads
 * through its current CPU.  KVM_TRANSLATE waits for a vCPU in KVM_RUN:
 * the VM pauses around it.
 */
static int x_read(struct monitor *mon, uint64_t addr, bool virt, uint8_t *buf, uint64_t len, struct strbuf *out)
{
	uint64_t done, n, gpa;
	const uint8_t *p;
	int ret = 0, err;

	if (virt && vm_pause_timed(mon->vm, VM_PAUSE_TIMEOUT_MS))
		return monitor_error(out, -ETIMEDOUT, "a vCPU does not stop (blocked on a missing page?)");
	for (done = 0; done < len && !ret; done += n) {
		uint64_t a = addr + done;

		n = virt ? PAGE_SIZE - (a & (PAGE_SIZE - 1)) : len - done;
		n = n < len - done ? n : len - done;
		gpa = a;
		if (virt && (err = vcpu_translate(&mon->vm->vcpus[0], a, &gpa)))
			ret = err == -EFAULT ?
			      monitor_error(out, err, "virtual address 0x%llx is not mapped by vCPU 0's page tables "
					    "(xp reads guest-physical memory)", (unsigned long long)a) :
			      monitor_error(out, err, "cannot translate 0x%llx: %s", (unsigned long long)a, strerror(-err));
		else if (!(p = ram_gpa_to_hva(&mon->vm->ram, gpa, n)))
			ret = monitor_error(out, -EFAULT, "0x%llx+%llu is not guest RAM",
					    (unsigned long long)gpa, (unsigned long long)n);
		else if (!ram_present(mon, p, n))
			ret = monitor_error(out, -EAGAIN, "0x%llx+%llu has not arrived yet (postcopy)",
					    (unsigned long long)gpa, (unsigned long long)n);
		else
			memcpy(buf + done, p, n);
	}
	if (virt)
		vm_resume(mon->vm);
	return ret;
}

/* QEMU's character form: 'a', '\n', '\x01'. */
static void x_char(struct strbuf *out, uint8_t c)
{
	if (c == '\'' || c == '\\')
		strbuf_printf(out, "'\\%c'", c);
	else if (c == '\n' || c == '\r')
		strbuf_printf(out, "'\\%c'", c == '\n' ? 'n' : 'r');
	else if (c >= 32 && c <= 126)
		strbuf_printf(out, "'%c'", c);
	else
		strbuf_printf(out, "'\\x%02x'", c);
}

/* QEMU's layout: 8 units a line for bytes, else 16 bytes; /c shows bytes of COUNT units of SIZE. */
static void x_dump(struct strbuf *out, uint64_t addr, const uint8_t *buf, const struct x_format *f)
{
	uint64_t len = f->count * f->size, off, i;
	unsigned int w = f->format == 'c' ? 1 : f->size, line = f->size == 1 ? 8 : 16, bits = w * 8;
	int digits = f->format == 'o' ? (int)(bits + 2) / 3 : f->format == 'x' ? (int)bits / 4 : (int)(bits * 10 + 32) / 33;

	for (off = 0; off < len; off += line) {
		uint64_t n = len - off < line ? len - off : line;

		strbuf_printf(out, "%016llx:", (unsigned long long)(addr + off));
		for (i = 0; i < n; i += w) {
			uint64_t v = 0;

			memcpy(&v, buf + off + i, w);	/* little endian, like the guest */
			if (f->format == 'o')
				strbuf_printf(out, " %#*llo", digits, (unsigned long long)v);
			else if (f->format == 'x')
				strbuf_printf(out, " 0x%0*llx", digits, (unsigned long long)v);
			else if (f->format == 'u')
				strbuf_printf(out, " %*llu", digits, (unsigned long long)v);
			else if (f->format == 'd')
				strbuf_printf(out, " %*lld", digits,
					      bits < 64 ? (long long)(v ^ 1ULL << (bits - 1)) - (1LL << (bits - 1)) : (long long)v);
			else {
				strbuf_printf(out, " ");
				x_char(out, (uint8_t)v);
			}
		}
		strbuf_printf(out, "\n");
	}
}

/* x /FMT ADDR (guest-virtual) and xp [/FMT] ADDR (guest-physical), as QEMU's HMP has them. */
static int x_formatted(struct monitor *mon, int argc, char **argv, struct strbuf *out, bool virt)
{
	int fmt = argc > 1 && argv[1][0] == '/';
	uint8_t buf[X_MAX_LEN];
	struct x_format f = { .count = 1, .format = 'x', .size = 4 };
	uint64_t addr;

	if (argc != 2 + fmt)
		return monitor_error(out, -EINVAL, "usage: %s /FMT ADDR (FMT: /[COUNT][x|d|u|o|c][b|h|w|g])", argv[0]);
	if (fmt && x_parse_format(argv[1], &f, out))
		return -EINVAL;
	if (parse_u64(argv[1 + fmt], &addr))
		return monitor_error(out, -EINVAL, "bad address '%s'", argv[1 + fmt]);
	if (x_read(mon, addr, virt, buf, f.count * f.size, out))
		return -EFAULT;
	x_dump(out, addr, buf, &f);
	return 0;
}

static int cmd_x(struct monitor *mon, int argc, char **argv, struct strbuf *out)
{
	if (argc > 1 && argv[1][0] == '/')
		return x_formatted(mon, argc, argv, out, true);
	return x_bytes(mon, argc, argv, out);
}

static int cmd_xp(struct monitor *mon, int argc, char **argv, struct strbuf *out)
{
	return x_formatted(mon, argc, argv, out, false);
}

static int cmd_poke(struct monitor *mon, int argc, char **argv, struct strbuf *out)
{
	uint64_t gpa, val, size = 1;
	uint8_t *p;

	if (argc < 3 || argc > 4)
		return monitor_error(out, -EINVAL, "usage: poke ADDR VALUE [SIZE]");
	if (parse_u64(argv[1], &gpa))
		return monitor_error(out, -EINVAL, "bad address '%s'", argv[1]);
	if (parse_u64(argv[2], &val))
		return monitor_error(out, -EINVAL, "bad value '%s'", argv[2]);
	if (argc == 4 && (parse_u64(argv[3], &size) || (size != 1 && size != 2 && size != 4 && size != 8)))
		return monitor_error(out, -EINVAL, "bad size '%s' (1, 2, 4 or 8)", argv[3]);
	if (size < 8 && val >> (8 * size))
		return monitor_error(out, -ERANGE, "value 0x%llx does not fit in %llu byte(s)",
				     (unsigned long long)val, (unsigned long long)size);
	p = ram_gpa_to_hva(&mon->vm->ram, gpa, size);
	if (!p)
		return monitor_error(out, -EFAULT, "0x%llx is not guest RAM", (unsigned long long)gpa);
	if (!ram_present(mon, p, size))
		return monitor_error(out, -EAGAIN, "0x%llx has not arrived yet (postcopy)", (unsigned long long)gpa);
	/* Little endian, like the guest; pause so the write lands between guest accesses. */
	if (vm_pause_timed(mon->vm, VM_PAUSE_TIMEOUT_MS))
		return monitor_error(out, -ETIMEDOUT, "a vCPU does not stop (blocked on a missing page?)");
	memcpy(p, &val, size);
	vm_mark_dirty(mon->vm, gpa, size);
	vm_resume(mon->vm);
	return 0;
}

static int cmd_stop(struct monitor *mon, int argc, char **argv, struct strbuf *out)
{
	enum vm_state s = vm_get_state(mon->vm, NULL, NULL, 0);

	if (s != VM_STATE_RUNNING && s != VM_STATE_PAUSED)
		return monitor_error(out, -EINVAL, "the VM is %s", vm_state_name(s));
	if (vm_user_stop(mon->vm))
		return monitor_error(out, -ETIMEDOUT, "a vCPU does not stop (blocked on a missing page?)");
	return 0;
}

static int cmd_cont(struct monitor *mon, int argc, char **argv, struct strbuf *out)
{
	enum vm_state s = vm_get_state(mon->vm, NULL, NULL, 0);
	char why[320];

	if (s != VM_STATE_RUNNING && s != VM_STATE_PAUSED)
		return monitor_error(out, -EINVAL, "the VM is %s and cannot continue", vm_state_name(s));
	if (vm_cont_refused(mon->vm, why, sizeof(why)))
		return monitor_error(out, -EBUSY, "cont refused: %s", why);
	vm_user_cont(mon->vm);
	return 0;
}

static int cmd_quit(struct monitor *mon, int argc, char **argv, struct strbuf *out)
{
	vm_request_exit(mon->vm, 0, "quit from the monitor");
	return 0;
}

/* ---- completion: readline's, on the main thread only ---- */

static struct monitor_completion completion;

void monitor_complete_add(struct monitor_completion *c, const char *word)
{
	char **v;

	if (strncmp(word, c->text, strlen(c->text)))
		return;
	if (c->n == c->cap) {
		v = realloc(c->word, (size_t)(c->cap ? 2 * c->cap : 16) * sizeof(*v));
		if (!v)
			return;
		c->word = v;
		c->cap = c->cap ? 2 * c->cap : 16;
	}
	c->word[c->n] = strdup(word);
	if (c->word[c->n])
		c->n++;
}

/* Each of the bar-separated @names ("cont|c"). */
static void complete_names(struct monitor_completion *c, const char *names)
{
	const char *p = names, *bar;
	char one[64];

	do {
		bar = strchr(p, '|');
		snprintf(one, sizeof(one), "%.*s", (int)(bar ? (size_t)(bar - p) : strlen(p)), p);
		monitor_complete_add(c, one);
		if (bar)
			p = bar + 1;
	} while (bar);
}

static void complete_commands(struct monitor *mon, struct monitor_completion *c)
{
	const struct monitor_cmd *cmd;
	int t;

	for (t = 0; t < mon->ntables; t++)
		for (cmd = mon->tables[t]; cmd->name; cmd++)
			complete_names(c, cmd->name);
}

void monitor_complete_files(struct monitor_completion *c, size_t skip)
{
	const char *path = c->text + skip, *slash = strrchr(path, '/');
	int dlen = slash ? (int)(slash - path + 1) : 0;
	const char *base = path + dlen;
	char word[MONITOR_LINE_MAX];
	struct dirent *e;
	struct stat st;
	DIR *d;

	snprintf(word, sizeof(word), "%.*s", dlen, path);
	d = opendir(dlen ? word : ".");
	if (!d)
		return;
	while ((e = readdir(d))) {
		bool dir;

		/* Hidden names only when asked for, as a shell does. */
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") || (e->d_name[0] == '.' && base[0] != '.') ||
		    strncmp(e->d_name, base, strlen(base)))
			continue;
		dir = fstatat(dirfd(d), e->d_name, &st, 0) == 0 && S_ISDIR(st.st_mode);
		snprintf(word, sizeof(word), "%.*s%.*s%s%s", (int)skip, c->text, dlen, path, e->d_name, dir ? "/" : "");
		monitor_complete_add(c, word);
	}
	closedir(d);
}

static void complete_help(struct monitor *mon, int argc, char **argv, struct monitor_completion *c)
{
	if (argc == 1)
		complete_commands(mon, c);
}

static void complete_info(struct monitor *mon, int argc, char **argv, struct monitor_completion *c)
{
	const struct monitor_cmd *topic;
	int t;

	if (argc == 1) {
		for (t = 0; t < mon->ninfo; t++)
			for (topic = mon->info_tables[t]; topic->name; topic++)
				complete_names(c, topic->name);
		return;
	}
	topic = monitor_find_info(mon, argv[1]);
	if (topic && topic->complete)
		topic->complete(mon, argc, argv, c);
}

static void complete_registers(struct monitor *mon, int argc, char **argv, struct monitor_completion *c)
{
	char cpu[16];
	int i;

	if (argc != 2)
		return;
	monitor_complete_add(c, "-a");
	for (i = 0; i < mon->vm->ncpus; i++) {
		snprintf(cpu, sizeof(cpu), "%d", i);
		monitor_complete_add(c, cpu);
	}
}

char *monitor_complete(struct monitor *mon, const char *before, const char *text, int state)
{
	static int next;
	char buf[MONITOR_LINE_MAX], *argv[MONITOR_MAX_ARGS + 1];
	const struct monitor_cmd *cmd;
	int argc, i;

	if (!state) {
		for (i = 0; i < completion.n; i++)
			free(completion.word[i]);
		completion.n = next = 0;
		completion.text = text;
		snprintf(buf, sizeof(buf), "%s", before);
		argc = parse_words(buf, argv, MONITOR_MAX_ARGS + 1);
		if (argc == 0)
			complete_commands(mon, &completion);
		else if (argc <= MONITOR_MAX_ARGS && (cmd = monitor_find(mon, argv[0])) && cmd->complete)
			cmd->complete(mon, argc, argv, &completion);
	}
	return next < completion.n ? strdup(completion.word[next++]) : NULL;
}

static const struct monitor_cmd builtin_info[] = {
	{ "status", "", "the VM's run state", info_status, NULL },
	{ "cpus", "", "each vCPU's RIP, state and exits", info_cpus, NULL },
	{ "registers", "[-a | CPU]", "registers, segments, code bytes: every vCPU (-a, the default) or one",
	  info_registers, complete_registers },
	{ "ram", "", "the RAM slots", info_ram, NULL },
	{ NULL, NULL, NULL, NULL, NULL },
};

static const struct monitor_cmd builtin_cmds[] = {
	{ "help", "[COMMAND]", "list the commands, or show one command's arguments", cmd_help, complete_help },
	{ "info", "TOPIC", "show status, cpus, registers [-a | CPU], ram, migrate, migrate_parameters", cmd_info,
	  complete_info },
	{ "x", "ADDR [LEN]",
	  "examine LEN bytes (default 64, at most 4096) of guest-physical memory as hex and text; "
	  "x /FMT ADDR: QEMU's /[COUNT][x|d|u|o|c][b|h|w|g] at a guest-virtual ADDR (vCPU 0's page tables)", cmd_x, NULL },
	{ "xp", "[/FMT] ADDR", "examine guest-physical memory: QEMU's /[COUNT][x|d|u|o|c][b|h|w|g] (default /1xw)",
	  cmd_xp, NULL },
	{ "poke", "ADDR VALUE [SIZE]", "write VALUE as SIZE bytes (1, 2, 4, 8) at guest-physical ADDR", cmd_poke, NULL },
	{ "stop", "", "pause the vCPUs", cmd_stop, NULL },
	{ "cont|c", "", "resume the vCPUs", cmd_cont, NULL },
	{ "quit|q", "", "end the VM and vmm (exit status 0)", cmd_quit, NULL },
	{ NULL, NULL, NULL, NULL, NULL },
};

void monitor_init(struct monitor *mon, struct vm *vm, struct loop *loop)
{
	int i;

	memset(mon, 0, sizeof(*mon));
	mon->vm = vm;
	mon->loop = loop;
	mon->listen_fd = -1;
	for (i = 0; i < MONITOR_MAX_CLIENTS; i++)
		mon->clients[i].fd = -1;
	monitor_add_commands(mon, builtin_cmds);
	monitor_add_info(mon, builtin_info);
}

int monitor_add_info(struct monitor *mon, const struct monitor_cmd *table)
{
	if (mon->ninfo == (int)(sizeof(mon->info_tables) / sizeof(mon->info_tables[0])))
		return -ENOSPC;
	mon->info_tables[mon->ninfo++] = table;
	return 0;
}

int monitor_add_commands(struct monitor *mon, const struct monitor_cmd *table)
{
	if (mon->ntables == (int)(sizeof(mon->tables) / sizeof(mon->tables[0])))
		return -ENOSPC;
	mon->tables[mon->ntables++] = table;
	return 0;
}

int monitor_execute(struct monitor *mon, const char *line, struct strbuf *out)
{
	char buf[MONITOR_LINE_MAX], *argv[MONITOR_MAX_ARGS + 1];
	const struct monitor_cmd *c;
	int argc;

	const char *word = line + strspn(line, " \t"), *slash = word + strcspn(word, " \t/");

	if (strlen(line) + 1 >= sizeof(buf))
		return monitor_error(out, -E2BIG, "line too long");
	/* QEMU's x/8xb: the format may follow the command's name without a blank. */
	snprintf(buf, sizeof(buf), "%.*s%s%s", (int)(slash - line), line, *slash == '/' ? " " : "", slash);
	argc = parse_words(buf, argv, MONITOR_MAX_ARGS + 1);
	if (argc == 0)
		return 0;
	if (argc > MONITOR_MAX_ARGS)
		return monitor_error(out, -E2BIG, "too many arguments");
	c = monitor_find(mon, argv[0]);
	if (!c)
		return monitor_error(out, -ENOENT, "unknown command '%s' (try 'help')", argv[0]);
	return c->fn(mon, argc, argv, out);
}

/* ---- the unix-socket server ---- */

static int write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static void monitor_client_close(struct monitor *mon, struct monitor_client *c)
{
	loop_del(mon->loop, c->fd);
	close(c->fd);
	c->fd = -1;
	c->len = 0;
}

static void monitor_client_line(struct monitor *mon, struct monitor_client *c, const char *line)
{
	struct strbuf out = STRBUF_INIT;
	const struct monitor_cmd *cmd;
	char word[8] = "";
	bool quit;

	sscanf(line, " %7s", word);
	cmd = monitor_find(mon, word);
	quit = cmd && cmd->fn == cmd_quit;
	monitor_execute(mon, line, &out);
	if (!quit)
		strbuf_printf(&out, "%s", MONITOR_PROMPT);
	if (strbuf_failed(&out) || (out.len && write_all(c->fd, out.buf, out.len)) || quit)
		monitor_client_close(mon, c);
	strbuf_release(&out);
}

static void monitor_client_read(void *opaque, int fd, short revents)
{
	struct monitor *mon = opaque;
	struct monitor_client *c = NULL;
	ssize_t n;
	char *nl;
	int i;

	for (i = 0; i < MONITOR_MAX_CLIENTS; i++)
		if (mon->clients[i].fd == fd)
			c = &mon->clients[i];
	if (!c)
		return;
	n = recv(fd, c->buf + c->len, sizeof(c->buf) - 1 - c->len, 0);
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {
		monitor_client_close(mon, c);
		return;
	}
	c->len += (unsigned)n;
	c->buf[c->len] = '\0';
	while (c->fd >= 0 && (nl = strchr(c->buf, '\n'))) {
		*nl = '\0';
		if (nl > c->buf && nl[-1] == '\r')
			nl[-1] = '\0';
		monitor_client_line(mon, c, c->buf);
		if (c->fd < 0)
			return;
		c->len -= (unsigned)(nl + 1 - c->buf);
		memmove(c->buf, nl + 1, c->len + 1);
	}
	if (c->len == sizeof(c->buf) - 1) {
		write_all(c->fd, "error: line too long\n", 21);
		monitor_client_close(mon, c);
	}
}

/*
 * Whoever connects can read and write guest RAM and create files as this
 * process's user: only that user, root, and (where the socket's mode lets
 * the group in) the group may.  The file mode already keeps others out;
 * this holds also where the directory or the mode would not.
 */
static bool peer_allowed(const struct monitor *mon, int cfd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return false;
	if (cred.uid == 0 || cred.uid == geteuid() || ((mon->mode & 060) && cred.gid == getegid()))
		return true;
	warn("monitor: refused a client of uid %u (pid %d)", (unsigned int)cred.uid, (int)cred.pid);
	return false;
}

static void monitor_accept(void *opaque, int fd, short revents)
{
	struct monitor *mon = opaque;
	struct timeval tv = { .tv_sec = 5 };
	int cfd, i;

	cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
	if (cfd < 0)
		return;
	if (!peer_allowed(mon, cfd)) {
		write_all(cfd, "error: permission denied\n", 25);
		close(cfd);
		return;
	}
	for (i = 0; i < MONITOR_MAX_CLIENTS && mon->clients[i].fd >= 0; i++)
		;
	if (i == MONITOR_MAX_CLIENTS) {
		write_all(cfd, "error: too many monitor clients\n", 32);
		close(cfd);
		return;
	}
	/* A client that stops reading must not block the main loop for long. */
	setsockopt(cfd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (loop_add(mon->loop, cfd, POLLIN, monitor_client_read, mon)) {
		close(cfd);
		return;
	}
	mon->clients[i].fd = cfd;
	mon->clients[i].len = 0;
	if (write_all(cfd, MONITOR_PROMPT, strlen(MONITOR_PROMPT)))
		monitor_client_close(mon, &mon->clients[i]);
}

_Static_assert(sizeof(((struct sockaddr_un *)0)->sun_path) == MONITOR_PATH_MAX, "MONITOR_PATH_MAX");

/* @path is shorter than MONITOR_PATH_MAX (monitor_parse_address checked it). */
static void unix_addr(const char *path, struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	snprintf(sa->sun_path, sizeof(sa->sun_path), "%s", path);
}

int monitor_parse_address(const char *addr, char *path, size_t len, unsigned *mode)
{
	const char *p = strncmp(addr, "unix:", 5) ? addr : addr + 5;
	const char *opt = strstr(p, ",mode=");
	size_t n = opt ? (size_t)(opt - p) : strlen(p);

	/* A path may hold a colon, but these are other transports that vmm lacks. */
	if (!n || !strncmp(addr, "tcp:", 4) || !strncmp(addr, "telnet:", 7))
		return error(-EINVAL, "bad monitor address '%s': [unix:]PATH (a unix socket)", addr);
	if (n >= len || n >= MONITOR_PATH_MAX)
		return error(-EINVAL, "monitor socket path too long (at most %d bytes): %s", MONITOR_PATH_MAX - 1, p);
	if (opt && !mode)
		return error(-EINVAL, "bad monitor address '%s': mode= is for the side that listens", addr);
	/* PATH[,mode=OCTAL]: 0600 unless the user asks for more. */
	if (opt) {
		char *end;
		unsigned long m = strtoul(opt + 6, &end, 8);

		if (end == opt + 6 || *end || m > 0777 || (m & 0600) != 0600)
			return error(-EINVAL, "bad monitor socket mode '%s' (octal, at least 0600, e.g. mode=0660)",
				     opt + 6);
		*mode = (unsigned)m;
	} else if (mode) {
		*mode = 0600;
	}
	snprintf(path, len, "%.*s", (int)n, p);
	return 0;
}

int monitor_listen(struct monitor *mon, const char *spec)
{
	struct sockaddr_un sa;
	struct stat st;
	char path[MONITOR_PATH_MAX];
	unsigned mode;
	mode_t old;
	int fd, ret;

	ret = monitor_parse_address(spec, path, sizeof(path), &mode);
	if (ret)
		return ret;
	mon->mode = mode;
	unix_addr(path, &sa);
	/* Replace a stale socket, never another kind of file. */
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return error(-EEXIST, "%s exists and is not a socket", path);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			close(fd);
			return error(-EADDRINUSE, "%s: another vmm is listening there", path);
		}
		if (fd >= 0)
			close(fd);
		unlink(path);
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return error_errno(-errno, "socket");
	/* Never a moment with the umask's mode: created private, then opened as asked. */
	old = umask(0177);
	ret = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (ret < 0 || chmod(path, (mode_t)mode) < 0 || listen(fd, 4) < 0) {
		ret = error_errno(-errno, "cannot listen on %s", path);
		close(fd);
		return ret;
	}
	ret = loop_add(mon->loop, fd, POLLIN, monitor_accept, mon);
	if (ret) {
		close(fd);
		unlink(path);
		return error(ret, "too many event sources");
	}
	mon->listen_fd = fd;
	mon->path = strdup(path);
	return 0;
}

void monitor_destroy(struct monitor *mon)
{
	int i;

	for (i = 0; i < MONITOR_MAX_CLIENTS; i++)
		if (mon->clients[i].fd >= 0)
			monitor_client_close(mon, &mon->clients[i]);
	if (mon->listen_fd >= 0) {
		loop_del(mon->loop, mon->listen_fd);
		close(mon->listen_fd);
		mon->listen_fd = -1;
	}
	if (mon->path) {
		unlink(mon->path);
		free(mon->path);
		mon->path = NULL;
	}
}

/* ---- the client: vmm monitor PATH [COMMAND...] ---- */

/*
 * Read one reply: everything up to the next prompt at the start of a line.
 * Returns 1 if a reply was read, 0 on EOF (the server closed: quit), -errno.
 */
static int client_read_reply(int fd, struct strbuf *reply)
{
	size_t plen = strlen(MONITOR_PROMPT);
	char buf[4096];

	strbuf_reset(reply);
	for (;;) {
		ssize_t n;

		if (reply->len >= plen && !memcmp(reply->buf + reply->len - plen, MONITOR_PROMPT, plen) &&
		    (reply->len == plen || reply->buf[reply->len - plen - 1] == '\n')) {
			reply->len -= plen;
			reply->buf[reply->len] = '\0';
			return 1;
		}
		n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return 0;
		strbuf_add(reply, buf, (size_t)n);
		if (strbuf_failed(reply))
			return -ENOMEM;
	}
}

static bool reply_failed(const struct strbuf *reply)
{
	const char *p = reply->buf;

	while (p && *p) {
		if (!strncmp(p, "error:", 6))
			return true;
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return false;
}

int monitor_request(int fd, const char *cmd, struct strbuf *reply)
{
	int ret;

	if (write_all(fd, cmd, strlen(cmd)) || write_all(fd, "\n", 1))
		return -EPIPE;
	ret = client_read_reply(fd, reply);
	if (ret < 0)
		return ret;
	if (ret == 0)
		return 2;
	return reply_failed(reply) ? 1 : 0;
}

int monitor_connect(const char *addr)
{
	struct strbuf prompt = STRBUF_INIT;
	struct sockaddr_un sa;
	char path[MONITOR_PATH_MAX];
	int fd, ret;

	ret = monitor_parse_address(addr, path, sizeof(path), NULL);
	if (ret)
		return ret;
	unix_addr(path, &sa);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		ret = error_errno(-errno, "cannot connect to the monitor at %s", path);
		if (fd >= 0)
			close(fd);
		return ret;
	}
	ret = client_read_reply(fd, &prompt);
	strbuf_release(&prompt);
	if (ret <= 0) {
		close(fd);
		return error(-EPROTO, "%s: no monitor prompt", path);
	}
	return fd;
}

/* Send one command, print its reply; 0, 1 (the command failed), -errno; *closed on quit. */
static int client_command(int fd, const char *cmd, struct strbuf *reply, bool *closed)
{
	int ret = monitor_request(fd, cmd, reply);

	if (ret < 0)
		return ret;
	*closed = ret == 2;
	if (reply->len)
		fwrite(reply->buf, 1, reply->len, stdout);
	fflush(stdout);
	return ret == 1;
}

int monitor_client(const char *addr, int ncmds, char **cmds)
{
	struct strbuf reply = STRBUF_INIT;
	bool closed = false, tty = isatty(STDIN_FILENO);
	char sbuf[MONITOR_LINE_MAX];
	int fd, i, status = 0, ret;

	fd = monitor_connect(addr);
	if (fd < 0)
		return 2;
	for (i = 0; !closed && (ncmds == 0 || i < ncmds); i++) {
		char *line = NULL;
		const char *cmd;

		if (ncmds) {
			cmd = cmds[i];
		} else if (tty) {
			line = readline(MONITOR_PROMPT);
			if (!line)
				break;
			if (*line)
				add_history(line);
			cmd = line;
		} else {
			if (!fgets(sbuf, sizeof(sbuf), stdin))
				break;
			sbuf[strcspn(sbuf, "\n")] = '\0';
			cmd = sbuf;
		}
		ret = client_command(fd, cmd, &reply, &closed);
		free(line);
		if (ret < 0) {
			error_errno(ret, "monitor connection lost");
			status = 2;
			break;
		}
		if (ret)
			status = 1;
	}
	close(fd);
	strbuf_release(&reply);
	return status;
}
