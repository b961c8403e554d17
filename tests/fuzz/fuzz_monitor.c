// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Fuzz target: the monitor's command line (vmm/monitor.c), which anyone who
 * can connect to the monitor socket reaches: monitor_execute() splits a line
 * into words (parse_words, vmm/parse.c) and dispatches it to the built-in
 * and migration commands, whose arguments go through parse_u64() and
 * parse_size(); the migration URI parser (uri_parse, migrate/uri.c) is
 * fuzzed on the same lines.  The input is text, one command per line.
 *
 * The VM is built without KVM (vm_create(): RAM and devices only), so that
 * `x` and `poke` reach guest RAM and the commands that need running vCPUs or
 * a running VM refuse as they would on a VM that has not started: `migrate`
 * says there is nothing to migrate before it would open any connection or
 * file.  The vCPUs are stubs whose KVM fd is closed (-1), so that `info
 * registers` and `info cpus` go through their error paths.  After each input
 * the VM's run state is put back (quit and stop change it).
 *
 * Each line's last word is also completed (monitor_complete), as a Tab
 * at the end of it would.
 *
 * Besides ASan and UBSan, the oracles: parse_size() agrees with parse_u64()
 * on every number without a suffix; every completion starts with the word
 * typed.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "migrate/migration.h"
#include "migrate/uri.h"
#include "tests/fuzz/feed.h"
#include "vmm/log.h"
#include "vmm/monitor.h"
#include "vmm/parse.h"
#include "vmm/strbuf.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"

static struct vm vm;
static struct monitor mon;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct vm_config cfg = { .ram_size = RAM_MIN_SIZE, .ncpus = 2, .serial_fd = -1 };
	struct migration *m;
	int i;

	log_level = LOG_QUIET;
	if (vm_create(&vm, &cfg))
		abort();
	vm.vcpus = calloc((size_t)vm.ncpus, sizeof(*vm.vcpus));
	if (!vm.vcpus)
		abort();
	for (i = 0; i < vm.ncpus; i++)
		vm.vcpus[i] = (struct vcpu){ .vm = &vm, .id = i, .fd = -1 };
	monitor_init(&mon, &vm, NULL);
	m = migration_new(&vm);
	if (!m || migration_add_commands(m, &mon))
		abort();
	return 0;
}

/* What `quit`, `stop` and a failed command may leave behind. */
static void vm_reset(void)
{
	pthread_mutex_lock(&vm.lock);
	vm.state = VM_STATE_CREATED;
	vm.pause_count = 0;
	vm.user_paused = false;
	vm.exit_status = 0;
	vm.reason[0] = vm.pause_reason[0] = '\0';
	pthread_mutex_unlock(&vm.lock);
}

static void numbers(const char *s)
{
	uint64_t a, b;
	int ra = parse_u64(s, &a), rb = parse_size(s, &b);

	FUZZ_ASSERT(ra == 0 || ra == -EINVAL || ra == -ERANGE);
	FUZZ_ASSERT(rb == 0 || rb == -EINVAL || rb == -ERANGE);
	if (!ra && s[0] >= '0' && s[0] <= '9')
		FUZZ_ASSERT(!rb && a == b);
}

/* Tab at the end of @line: the last word completed after the words before it. */
static void complete_line(const char *line)
{
	const char *text = strrchr(line, ' ') ? strrchr(line, ' ') + 1 : line;
	char *before = strndup(line, (size_t)(text - line)), *w;
	int state;

	if (!before)
		return;
	for (state = 0; (w = monitor_complete(&mon, before, text, state)); state++) {
		FUZZ_ASSERT(!strncmp(w, text, strlen(text)));
		free(w);
	}
	free(before);
}

static void one_line(const char *line)
{
	struct strbuf out = STRBUF_INIT;
	struct uri u;
	char err[256];
	int ret;

	numbers(line);
	ret = uri_parse(line, &u, err, sizeof(err));
	FUZZ_ASSERT(!ret || memchr(err, '\0', sizeof(err)));
	if (!ret)
		FUZZ_ASSERT(memchr(u.host, '\0', sizeof(u.host)) && memchr(u.port, '\0', sizeof(u.port)) &&
			    memchr(u.path, '\0', sizeof(u.path)));
	ret = monitor_execute(&mon, line, &out);
	FUZZ_ASSERT(ret <= 0);
	/* A failed command says so in its reply, as the socket protocol promises (monitor.h). */
	FUZZ_ASSERT(!ret || (out.buf && strstr(out.buf, "error: ")));
	strbuf_release(&out);
	complete_line(line);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *at = data, *end = data + size;

	while (at < end) {
		const uint8_t *nl = memchr(at, '\n', (size_t)(end - at));
		size_t len = (size_t)((nl ? nl : end) - at);
		/* Each line in its own buffer of its exact size: ASan sees a read past its end. */
		char *line = malloc(len + 1);

		memcpy(line, at, len);
		line[len] = '\0';
		one_line(line);
		free(line);
		at += len + 1;
	}
	vm_reset();
	return 0;
}
