// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The fuzz targets' seed corpora, written by the project's own writers:
 * streams by stream_write_header() and stream_write() into files, machine
 * states by state_encode() of a machine_state_init() state, monitor lines
 * from the command tables (completion and `help`), and the real test guest
 * for the loader.  Each file starts with its target's prefix (see the
 * comment at the top of each tests/fuzz/fuzz_NAME.c).
 *
 * usage: gen_corpus DIR GUEST_IMAGE   (make fuzz-corpus): the files go to DIR/NAME/.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "migrate/migration.h"
#include "migrate/state.h"
#include "migrate/stream.h"
#include "migrate/verify.h"
#include "vmm/log.h"
#include "vmm/monitor.h"
#include "vmm/ram.h"
#include "vmm/strbuf.h"
#include "vmm/vcpu_state.h"
#include "vmm/vm.h"

static const char *top;
static int nfiles;

static void die(const char *what)
{
	fprintf(stderr, "gen_corpus: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* Open DIR/@target/@name for writing, after the target's @prefix bytes. */
static int open_seed(const char *target, const char *name, const void *prefix, size_t plen)
{
	char path[512];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", top, target);
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		die(path);
	snprintf(path, sizeof(path), "%s/%s/%s", top, target, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, prefix, plen) != (ssize_t)plen)
		die(path);
	nfiles++;
	return fd;
}

static void put(int fd, const void *p, size_t len)
{
	if (len && write(fd, p, len) != (ssize_t)len)
		die("write");
}

static void seed_text(const char *target, const char *name, const char *text)
{
	close(open_seed(target, name, text, strlen(text)));
}

/* One record in the records.h form: type, 3-byte length, payload. */
static void put_rec(int fd, uint32_t type, const void *payload, uint32_t len)
{
	uint8_t h[4] = { (uint8_t)type, (uint8_t)len, (uint8_t)(len >> 8), (uint8_t)(len >> 16) };

	put(fd, h, 4);
	put(fd, payload, len);
}

static void wrec(struct stream *s, uint32_t type, const void *payload, uint32_t len)
{
	if (stream_write(s, type, payload, len))
		die("stream_write");
}

/* ---- payloads, as the writers lay them out (docs/design.md) ---- */

static uint8_t page[PAGE_SIZE];

/* RAM_PAGES: page @data (with its data), page @zero (zero), and @flags. */
static uint32_t pages_payload(uint8_t *buf, uint64_t data, uint64_t zero, uint32_t flags)
{
	uint32_t count = 2;
	uint64_t e[2] = { data << 1, zero << 1 | PAGE_ENTRY_ZERO };

	memcpy(buf, &count, 4);
	memcpy(buf + 4, &flags, 4);
	memcpy(buf + 8, e, sizeof(e));
	memcpy(buf + 24, page, PAGE_SIZE);
	return 24 + PAGE_SIZE;
}

/* DISCARD and ZERO_PAGES: two ranges. */
static uint32_t ranges_payload(uint8_t *buf, uint32_t flags, uint64_t a, uint64_t an, uint64_t b, uint64_t bn)
{
	uint32_t count = 2;
	uint64_t r[4] = { a, an, b, bn };

	memcpy(buf, &count, 4);
	memcpy(buf + 4, &flags, 4);
	memcpy(buf + 8, r, sizeof(r));
	return 8 + sizeof(r);
}

static uint32_t request_payload(uint8_t *buf, uint64_t a, uint64_t b, uint64_t c)
{
	uint32_t count = 3, zero = 0;
	uint64_t r[3] = { a, b, c };

	memcpy(buf, &count, 4);
	memcpy(buf + 4, &zero, 4);
	memcpy(buf + 8, r, sizeof(r));
	return 8 + sizeof(r);
}

/* VERIFY for every page of @ram (at most 65536), digests of what it holds. */
static uint32_t verify_payload(uint8_t *buf, struct verify *v)
{
	uint64_t head[2];
	uint32_t n = verify_record(v, 0, head);

	memcpy(buf, head, sizeof(head));
	memcpy(buf + 16, v->digest, 8ULL * n);
	return 16 + 8 * n;
}

/* A non-zero device field, so the corpus has one (the names are those of vm_saved_devices' tables). */
static void set_device_field(struct machine_state *ms, const char *dev, const char *field, uint64_t v)
{
	unsigned i, j;

	for (i = 0; i < VM_NSAVED_DEVICES; i++)
		for (j = 0; j < vm_saved_devices[i].state->nfields; j++)
			if (!strcmp(vm_saved_devices[i].state->name, dev) &&
			    !strcmp(vm_saved_devices[i].state->fields[j].name, field))
				ms->devices[i][j] = v;
}

static void *state_blob(int ncpus, uint32_t xsave, uint32_t nmsrs, size_t *len)
{
	struct machine_state ms;
	void *blob;
	int i;

	if (machine_state_init(&ms, ncpus, xsave))
		die("machine_state_init");
	for (i = 0; i < ncpus; i++) {
		struct cpu_state *c = &ms.cpus[i];
		uint32_t k;

		c->regs.rip = 0x100000 + (uint64_t)i;
		c->regs.rflags = 2;
		c->sregs.cr0 = 0x80000011;
		c->mp_state.mp_state = i ? KVM_MP_STATE_INIT_RECEIVED : KVM_MP_STATE_RUNNABLE;
		c->msrs = calloc(nmsrs ? nmsrs : 1, sizeof(*c->msrs));
		c->nmsrs = nmsrs;
		for (k = 0; k < nmsrs; k++)
			c->msrs[k] = (struct kvm_msr_entry){ .index = k ? 0xc0000080 + k : VCPU_MSR_IA32_TSC,
							     .data = 1000 * k };
	}
	ms.chips.clock = 123456789;
	set_device_field(&ms, "uart", "lcr", 3);
	set_device_field(&ms, "fw-cfg", "key", 0x19);
	if (state_encode(&ms, &blob, len))
		die("state_encode");
	machine_state_free(&ms);
	return blob;
}

/* ---- the targets ---- */

static void gen_stream(const struct ram *small, const struct ram *big, struct verify *v)
{
	static uint8_t buf[64 << 10];
	struct stream_header h;
	struct stream s;
	uint32_t n, ack;
	size_t slen;
	void *state = state_blob(1, 0, 2, &slen);
	static const struct { const char *name; uint8_t ctl, piece; } pre[] = {
		{ "precopy", 0x00, 0 }, { "precopy-pieces", 0x04, 7 }, { "precopy-fix", 0x03, 0 },
	};
	int fd;

	for (size_t i = 0; i < sizeof(pre) / sizeof(pre[0]); i++) {
		uint8_t prefix[3] = { pre[i].ctl, pre[i].piece, REC_RAM_PAGES };

		fd = open_seed("stream", pre[i].name, prefix, 3);
		stream_init(&s, fd);
		stream_header_for(&h, small, 1, STREAM_F_VERIFY);
		stream_write_header(&s, &h);
		wrec(&s, REC_RAM_PAGES, buf, pages_payload(buf, 1, 2, 0));
		memset(buf, 0, 16);
		n = 1;
		memcpy(buf, &n, 4);
		wrec(&s, REC_END_ROUND, buf, 16);
		wrec(&s, REC_VERIFY, buf, verify_payload(buf, v));
		wrec(&s, REC_MACHINE_STATE, state, (uint32_t)slen);
		wrec(&s, REC_END, NULL, 0);
		close(fd);
	}

	/* Postcopy, read as the fault server reads, with its buffer. */
	fd = open_seed("stream", "postcopy", (uint8_t[3]){ 0x14, 9, REC_ZERO_PAGES }, 3);
	stream_init(&s, fd);
	stream_header_for(&h, small, 1, STREAM_F_POSTCOPY | STREAM_F_CHANNELS);
	stream_write_header(&s, &h);
	wrec(&s, REC_RAM_PAGES, buf, pages_payload(buf, 3, 4, 0));
	wrec(&s, REC_DISCARD, buf, ranges_payload(buf, 0, 3, 1, 10, 20));
	wrec(&s, REC_MACHINE_STATE, state, (uint32_t)slen);
	wrec(&s, REC_POSTCOPY_RUN, NULL, 0);
	wrec(&s, REC_RAM_PAGES, buf, pages_payload(buf, 3, 5, PAGES_F_REQUESTED));
	wrec(&s, REC_ZERO_PAGES, buf, ranges_payload(buf, 0, 10, 20, 100, 1));
	wrec(&s, REC_POSTCOPY_DONE, NULL, 0);
	close(fd);

	/* The urgent channel of a two-slot machine. */
	fd = open_seed("stream", "urgent", (uint8_t[3]){ 0x00, 0, REC_PAGE_REQUEST }, 3);
	stream_init(&s, fd);
	stream_header_for(&h, big, 2, STREAM_F_POSTCOPY | STREAM_F_URGENT);
	stream_write_header(&s, &h);
	wrec(&s, REC_RAM_PAGES, buf, pages_payload(buf, ram_npages(big) - 1, 0, PAGES_F_REQUESTED));
	close(fd);

	/* The return path: no header, the postcopy return-path thread's buffer. */
	fd = open_seed("stream", "return-path", (uint8_t[3]){ 0x28, 0, REC_ERROR }, 3);
	stream_init(&s, fd);
	ack = ACK_HEADER;
	wrec(&s, REC_ACK, &ack, 4);
	wrec(&s, REC_PAGE_REQUEST, buf, request_payload(buf, 1, 2, 511));
	ack = ACK_RUNNING;
	wrec(&s, REC_ACK, &ack, 4);
	wrec(&s, REC_END_OF_COPY, NULL, 0);
	wrec(&s, REC_ERROR, "the destination failed", 22);
	close(fd);
	free(state);
}

static void gen_state(void)
{
	static const struct { const char *name; int ncpus; uint32_t xsave, nmsrs; } st[] = {
		{ "1cpu-fpu", 1, 0, 0 }, { "2cpu-xsave", 2, 4096, 3 }, { "4cpu-small-xsave", 4, 1024, 1 },
	};

	for (size_t i = 0; i < sizeof(st) / sizeof(st[0]); i++) {
		uint8_t prefix[3] = { (uint8_t)st[i].ncpus, (uint8_t)st[i].xsave, (uint8_t)(st[i].xsave >> 8) };
		size_t len;
		void *blob = state_blob(st[i].ncpus, st[i].xsave, st[i].nmsrs, &len);
		int fd = open_seed("state", st[i].name, prefix, 3);

		put(fd, blob, len);
		close(fd);
		free(blob);
	}
}

static void gen_incoming(const struct ram *big, struct verify *v)
{
	static uint8_t buf[64 << 10], fake_state[40];
	uint8_t end_round[16] = { 1 };
	int fd;

	/* verify, precopy, 2 MiB */
	fd = open_seed("incoming", "precopy-verify", (uint8_t[1]){ 0x01 }, 1);
	put_rec(fd, REC_RAM_PAGES, buf, pages_payload(buf, 1, 2, 0));
	put_rec(fd, REC_END_ROUND, end_round, 16);
	put_rec(fd, REC_VERIFY, buf, verify_payload(buf, v));
	put_rec(fd, REC_MACHINE_STATE, fake_state, sizeof(fake_state));
	put_rec(fd, REC_END, NULL, 0);
	close(fd);

	/* verify and postcopy, 2 MiB */
	fd = open_seed("incoming", "postcopy-verify", (uint8_t[1]){ 0x03 }, 1);
	put_rec(fd, REC_RAM_PAGES, buf, pages_payload(buf, 1, 2, 0));
	put_rec(fd, REC_END_ROUND, end_round, 16);
	put_rec(fd, REC_DISCARD, buf, ranges_payload(buf, 0, 1, 1, 100, 412));
	put_rec(fd, REC_VERIFY, buf, verify_payload(buf, v));
	put_rec(fd, REC_MACHINE_STATE, fake_state, sizeof(fake_state));
	put_rec(fd, REC_POSTCOPY_RUN, NULL, 0);
	close(fd);

	/* multifd and postcopy, 2 MiB: the main connection's fences, then the switch */
	fd = open_seed("incoming", "multifd-postcopy", (uint8_t[1]){ 0x12 }, 1);
	put_rec(fd, REC_MULTIFD_SYNC, (uint64_t[1]){ 1 }, 8);
	put_rec(fd, REC_END_ROUND, end_round, 16);
	put_rec(fd, REC_MULTIFD_SYNC, (uint64_t[1]){ 2 }, 8);
	put_rec(fd, REC_RAM_PAGES, buf, pages_payload(buf, 3, 1, 0));
	put_rec(fd, REC_DISCARD, buf, ranges_payload(buf, 0, 1, 1, 100, 412));
	put_rec(fd, REC_MACHINE_STATE, fake_state, sizeof(fake_state));
	put_rec(fd, REC_POSTCOPY_RUN, NULL, 0);
	close(fd);

	/* precopy, 4 GiB in two slots: the last page */
	fd = open_seed("incoming", "precopy-two-slots", (uint8_t[1]){ 0x0c }, 1);
	put_rec(fd, REC_RAM_PAGES, buf, pages_payload(buf, ram_npages(big) - 1, 0, 0));
	put_rec(fd, REC_MACHINE_STATE, fake_state, sizeof(fake_state));
	put_rec(fd, REC_END, NULL, 0);
	close(fd);
}

static void gen_faultsrv(const struct ram *big)
{
	static uint8_t buf[64 << 10];
	int fd;

	fd = open_seed("faultsrv", "pages-and-zeros", (uint8_t[1]){ 0x00 }, 1);
	put_rec(fd, REC_RAM_PAGES, buf, pages_payload(buf, 3, 4, PAGES_F_REQUESTED));
	put_rec(fd, REC_ZERO_PAGES, buf, ranges_payload(buf, 0, 10, 20, 500, 12));
	put_rec(fd, REC_RAM_PAGES, buf, pages_payload(buf, 7, 8, 0));
	close(fd);

	fd = open_seed("faultsrv", "two-slots", (uint8_t[1]){ 0x03 }, 1);
	put_rec(fd, REC_ZERO_PAGES, buf, ranges_payload(buf, PAGES_F_REQUESTED, 0, 1, ram_npages(big) - 2, 2));
	put_rec(fd, REC_RAM_PAGES, buf, pages_payload(buf, ram_npages(big) - 1, 0, PAGES_F_REQUESTED));
	close(fd);
}

static void gen_returnpath(void)
{
	uint8_t buf[256];
	uint32_t npages = 512, ack;
	struct stream s;
	int fd;

	fd = open_seed("returnpath", "request", (uint8_t[1]){ 0x00 }, 1);
	put(fd, &npages, 4);
	put(fd, buf, request_payload(buf, 1, 600, 511));
	close(fd);

	fd = open_seed("returnpath", "ack-header", (uint8_t[1]){ 0x01 }, 1);
	stream_init(&s, fd);
	ack = ACK_HEADER;
	wrec(&s, REC_ACK, &ack, 4);
	close(fd);

	fd = open_seed("returnpath", "ack-running", (uint8_t[1]){ 0x03 }, 1);
	stream_init(&s, fd);
	ack = ACK_HEADER;
	wrec(&s, REC_ACK, &ack, 4);
	ack = ACK_RUNNING;
	wrec(&s, REC_ACK, &ack, 4);
	close(fd);

	fd = open_seed("returnpath", "error", (uint8_t[1]){ 0x03 }, 1);
	stream_init(&s, fd);
	wrec(&s, REC_ERROR, "the machine state was refused", 29);
	close(fd);

	fd = open_seed("returnpath", "unexpected", (uint8_t[1]){ 0x01 }, 1);
	stream_init(&s, fd);
	wrec(&s, REC_END_OF_COPY, NULL, 0);
	close(fd);

	/* A resuming source's RECV_BITMAP: 100 pages, the first 70 received. */
	npages = 100;
	fd = open_seed("returnpath", "recv-bitmap", (uint8_t[1]){ 0x10 }, 1);
	put(fd, &npages, 4);
	{
		uint64_t bm[3] = { 100, ~0ULL, (1ULL << 6) - 1 };

		put(fd, bm, sizeof(bm));
	}
	close(fd);
}

/* An example for each word of a command's usage ("ADDR [LEN]"). */
static const char *example(const char *cmd, const char *word)
{
	static const struct { const char *word, *ex; } ex[] = {
		{ "ADDR", "0x1000" }, { "[LEN]", "16" }, { "VALUE", "0xff" }, { "[SIZE]", "1" },
		{ "URI", "tcp:127.0.0.1:4444" }, { "[-d]", "-d" }, { "[-p]", "-p" }, { "on|off", "on" },
		{ "TOPIC", "status" }, { "[COMMAND]", "x" }, { "[CPU]", "1" }, { "[--json", "--json" },
		{ "[--samples]]", "--samples" }, { "[/FMT]", "/8xb" },
	};

	if (!strcmp(word, "NAME"))
		return strstr(cmd, "capability") ? "postcopy" : "max-bandwidth";
	if (!strcmp(word, "VALUE") && strstr(cmd, "parameter"))
		return "100M";
	for (size_t i = 0; i < sizeof(ex) / sizeof(ex[0]); i++)
		if (!strcmp(word, ex[i].word))
			return ex[i].ex;
	return word;
}

static void gen_monitor(void)
{
	struct monitor mon;
	struct migration *m = migration_new(NULL);
	char *name, line[512];
	int state, all;

	monitor_init(&mon, NULL, NULL);
	if (!m || migration_add_commands(m, &mon))
		die("migration commands");
	all = open_seed("monitor", "all", "", 0);
	/* Every command, with an example of its arguments from its usage line (`help NAME`). */
	for (state = 0; (name = monitor_complete(&mon, "", "", state)); state++) {
		struct strbuf out = STRBUF_INIT;
		char *usage, *word, *save, seed[64];
		size_t n;

		snprintf(line, sizeof(line), "help %s", name);
		monitor_execute(&mon, line, &out);
		usage = strtok_r(out.buf, "\n", &save);
		n = (size_t)snprintf(line, sizeof(line), "%s", name);
		strtok_r(usage, " ", &save);	/* the name */
		while ((word = strtok_r(NULL, " ", &save)) && n < sizeof(line))
			n += (size_t)snprintf(line + n, sizeof(line) - n, " %s", example(name, word));
		snprintf(seed, sizeof(seed), "cmd-%s", name);
		seed_text("monitor", seed, line);
		put(all, line, strlen(line));
		put(all, "\n", 1);
		strbuf_release(&out);
		free(name);
	}
	for (state = 0; (name = monitor_complete(&mon, "info ", "", state)); state++) {
		snprintf(line, sizeof(line), "info %s\n", name);
		put(all, line, strlen(line));
		free(name);
	}
	close(all);
	seed_text("monitor", "numbers", "x 0x1FFFF0 16K\npoke 010 0377 8\nmigrate_set_parameter max-bandwidth 1GiB\n"
		  "migrate_set_parameter downtime-limit 18446744073709551615\nx 0 4096B\n");
	seed_text("monitor", "qemu", "xp /8xb 0x100000\nx/4dw 0x1000\nxp /3oh 0\nxp /2c 0x100000\nx /1ug 0xffff\n"
		  "info registers -a\nc\nq\nmigrate_set_capability postcopy-ram on\nmigrate file:\n");
	seed_text("monitor", "uris", "tcp:[::1]:4444\nunix:/tmp/x.sock\nfile:/tmp/snap\ntcp::4444\n");
}

static void gen_multiboot(const char *guest)
{
	static uint8_t img[1 << 20];
	uint8_t module[256];
	ssize_t len;
	int fd = open(guest, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || (len = read(fd, img, sizeof(img))) <= 0)
		die(guest);
	close(fd);
	fd = open_seed("multiboot", "guest", (uint8_t[2]){ 0, 0 }, 2);
	put(fd, img, (size_t)len);
	close(fd);
	/* With a 256-byte module (4 units of 64) after the image. */
	memset(module, 0x5a, sizeof(module));
	fd = open_seed("multiboot", "guest-module", (uint8_t[2]){ 1, 4 }, 2);
	put(fd, img, (size_t)len);
	put(fd, module, sizeof(module));
	close(fd);
	/* The ELF and program headers only: every segment is cut off. */
	fd = open_seed("multiboot", "guest-truncated", (uint8_t[2]){ 0, 0 }, 2);
	put(fd, img, len < 4096 ? (size_t)len : 4096);
	close(fd);
}

/* A bzImage's setup header (protocol 2.15, relocatable, 4 MiB at 16 MiB) and a page of code. */
static void gen_linux(void)
{
	static uint8_t img[1024 + 4096], initrd[512];
	uint32_t v32;
	uint64_t v64;
	int fd;

	img[0x1f1] = 1;					/* setup_sects */
	img[0x1fe] = 0x55, img[0x1ff] = 0xaa;
	img[0x200] = 0xeb, img[0x201] = 0x6a;		/* the header ends at 0x26c */
	memcpy(img + 0x202, "HdrS", 4);
	img[0x206] = 0x0f, img[0x207] = 0x02;
	img[0x211] = 1;					/* LOADED_HIGH */
	v32 = 0x100000, memcpy(img + 0x214, &v32, 4);
	v32 = 0x7fffffff, memcpy(img + 0x22c, &v32, 4);
	img[0x234] = 1;
	v32 = 2047, memcpy(img + 0x238, &v32, 4);
	v64 = 0x1000000, memcpy(img + 0x258, &v64, 8);
	v32 = 0x400000, memcpy(img + 0x260, &v32, 4);
	memset(img + 1024, 0x90, 4096);
	memset(initrd, 0x5a, sizeof(initrd));
	fd = open_seed("linux", "bzimage", (uint8_t[2]){ 0, 0 }, 2);
	put(fd, img, sizeof(img));
	close(fd);
	fd = open_seed("linux", "bzimage-initrd", (uint8_t[2]){ 1, 2 }, 2);
	put(fd, img, sizeof(img));
	put(fd, initrd, sizeof(initrd));
	close(fd);
}

int main(int argc, char **argv)
{
	struct ram small, big;
	struct verify v;

	if (argc != 3) {
		fprintf(stderr, "usage: gen_corpus DIR GUEST_IMAGE\n");
		return 2;
	}
	top = argv[1];
	if (mkdir(top, 0755) < 0 && errno != EEXIST)
		die(top);
	log_level = LOG_QUIET;
	for (size_t i = 0; i < PAGE_SIZE; i++)
		page[i] = (uint8_t)(i * 7);
	/* 2 MiB with its pages' digests; 4 GiB in two slots, laid out only. */
	if (ram_create(&small, 2ULL << 20) || ram_layout(&big, 4ULL << 30) || verify_init(&v, &small, false))
		die("ram");
	memcpy(ram_page_hva(&small, 1), page, PAGE_SIZE);
	verify_digest_ram(&v);
	gen_stream(&small, &big, &v);
	gen_state();
	gen_incoming(&big, &v);
	gen_faultsrv(&big);
	gen_returnpath();
	gen_monitor();
	gen_multiboot(argv[2]);
	gen_linux();
	printf("gen_corpus: %d files in %s\n", nfiles, top);
	return 0;
}
