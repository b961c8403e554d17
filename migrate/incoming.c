// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The destination side of a migration.
 *
 * `vmm run --incoming URI` builds an empty VM of the shape its options give
 * (RAM, vCPUs), waits for one connection (or opens the snapshot file), and
 * checks the header against that shape: a stream from a machine of another
 * shape is refused before a single page is written.  Records are checked
 * whole (sequence, length, checksum) before their payload is used; each
 * page index is checked against RAM.  At END the machine state is validated
 * and loaded, the destination acknowledges on the return path and starts
 * the vCPUs.
 *
 * Any failure is reported once, on stderr and to the source (an ERROR
 * record), and ends this vmm with status 1: a half-received guest is never
 * run.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "migrate/faultsrv.h"
#include "migrate/migration.h"
#include "migrate/state.h"
#include "migrate/stream.h"
#include "migrate/uffd.h"
#include "migrate/uri.h"
#include "migrate/verify.h"
#include "vmm/log.h"
#include "vmm/vm.h"

struct incoming {
	struct migration *m;
	struct vm *vm;
	struct uri uri;
	int fd;
	bool has_rp;
	struct stream st;
	int ufd;		/* postcopy: the urgent channel (requested pages), or -1 */
	struct stream ust;
	uint8_t *buf;
	void *state;
	uint32_t state_len;
	bool postcopy;		/* the source may switch: keep track of what is here */
	struct bitmap have;	/* postcopy: pages received in precopy, minus discards */
	int uffd;
	bool verify;		/* the source sends digests at its last stop (migrate/verify.h) */
	struct verify v;
	uint16_t round;		/* the precopy round being received, from 1 */
	char err[512];
};

#define POSTCOPY_RUN 1		/* receive(): the source switched to postcopy */
#define ACCEPT_URGENT_MS 10000	/* the urgent channel follows ACK(HEADER) at once */

static int check_header(struct incoming *in, const struct stream_header *h)
{
	const struct ram *ram = &in->vm->ram;
	uint32_t i;

	if (h->ram_size != ram->size || h->nslots != (uint32_t)ram->nslots) {
		snprintf(in->err, sizeof(in->err),
			 "the source has %llu MiB of RAM, this destination %llu MiB (start it with -m %lluM)",
			 (unsigned long long)(h->ram_size >> 20), (unsigned long long)(ram->size >> 20),
			 (unsigned long long)(h->ram_size >> 20));
		return -EINVAL;
	}
	for (i = 0; i < h->nslots; i++)
		if (h->slot[i].gpa != ram->slot[i].gpa || h->slot[i].size != ram->slot[i].size) {
			snprintf(in->err, sizeof(in->err), "RAM slot %u differs from this destination's", i);
			return -EINVAL;
		}
	if (h->ncpus != (uint32_t)in->vm->ncpus) {
		snprintf(in->err, sizeof(in->err), "the source has %u vCPUs, this destination %d (start it with -c %u)",
			 h->ncpus, in->vm->ncpus, h->ncpus);
		return -EINVAL;
	}
	if ((h->flags & ~(STREAM_F_POSTCOPY | STREAM_F_CHANNELS | STREAM_F_VERIFY)) ||
	    ((h->flags & STREAM_F_CHANNELS) && (!(h->flags & STREAM_F_POSTCOPY) || !in->has_rp))) {
		snprintf(in->err, sizeof(in->err), "the stream asks for features this vmm lacks (flags 0x%x)", h->flags);
		return -EINVAL;
	}
	if (h->flags & STREAM_F_VERIFY) {
		if (verify_init(&in->v, ram, true))
			return -ENOMEM;
		in->verify = true;
	}
	if (h->flags & STREAM_F_POSTCOPY) {
		char why[400];
		int ret = uffd_check(why, sizeof(why));

		/* Say it now, before any page moves: postcopy cannot work here. */
		if (ret) {
			snprintf(in->err, sizeof(in->err), "postcopy is not possible on this destination: %s", why);
			return ret;
		}
		in->postcopy = true;
		/*
		 * No transparent huge pages: a write to one 4 KiB page would make
		 * its whole 2 MiB present, zero-filled, and the pages around it
		 * that never came would then read as zeros instead of faulting.
		 */
		madvise(ram->base, ram->size, MADV_NOHUGEPAGE);
		return bitmap_init(&in->have, ram_npages(ram));
	}
	return 0;
}

/* Check a whole RAM_PAGES record, then place its pages. */
static int load_pages(struct incoming *in, const struct stream_rec *rec, uint64_t *ndata, uint64_t *nzero)
{
	const uint8_t *p = rec->payload;
	uint64_t npages = ram_npages(&in->vm->ram), i, data = 0;
	uint32_t count;
	const uint8_t *pages;

	if (rec->len < 8) {
		snprintf(in->err, sizeof(in->err), "RAM_PAGES record too short (%u bytes)", rec->len);
		return -EPROTO;
	}
	memcpy(&count, p, 4);
	if (p[4] | p[5] | p[6] | p[7]) {
		snprintf(in->err, sizeof(in->err), "RAM_PAGES record with unknown flags before the switch");
		return -EPROTO;
	}
	if (count == 0 || count > STREAM_PAGES_MAX || rec->len < 8 + 8ULL * count) {
		snprintf(in->err, sizeof(in->err), "RAM_PAGES record with a bad page count (%u)", count);
		return -EPROTO;
	}
	for (i = 0; i < count; i++) {
		uint64_t e;

		memcpy(&e, p + 8 + 8 * i, 8);
		if (e >> 1 >= npages) {
			snprintf(in->err, sizeof(in->err), "page index %llu outside RAM (%llu pages)",
				 (unsigned long long)(e >> 1), (unsigned long long)npages);
			return -EPROTO;
		}
		if (!(e & PAGE_ENTRY_ZERO))
			data++;
	}
	if (rec->len != 8 + 8ULL * count + data * PAGE_SIZE) {
		snprintf(in->err, sizeof(in->err), "RAM_PAGES record of %u bytes does not hold its %llu pages",
			 rec->len, (unsigned long long)data);
		return -EPROTO;
	}
	pages = p + 8 + 8ULL * count;
	for (i = 0; i < count; i++) {
		uint64_t e;
		uint8_t *dst;

		memcpy(&e, p + 8 + 8 * i, 8);
		dst = ram_page_hva(&in->vm->ram, e >> 1);
		if (in->postcopy)
			bitmap_set(&in->have, e >> 1);
		if (in->v.round)
			in->v.round[e >> 1] = in->round;
		if (e & PAGE_ENTRY_ZERO) {
			/* Do not touch (and so allocate) a page that is zero already. */
			if (!ram_page_is_zero(dst))
				memset(dst, 0, PAGE_SIZE);
			(*nzero)++;
		} else {
			memcpy(dst, pages, PAGE_SIZE);
			pages += PAGE_SIZE;
			(*ndata)++;
		}
	}
	return 0;
}

/* Drop pages sent in precopy and dirtied since: they must fault and come again. */
static int discard_pages(struct incoming *in, const struct stream_rec *rec)
{
	const uint8_t *p = rec->payload;
	uint64_t npages = ram_npages(&in->vm->ram), i, first, n;
	uint32_t count;

	if (!in->postcopy) {
		snprintf(in->err, sizeof(in->err), "DISCARD record in a precopy stream");
		return -EPROTO;
	}
	if (rec->len < 8 || (memcpy(&count, p, 4), rec->len != 8 + 16ULL * count) || !count) {
		snprintf(in->err, sizeof(in->err), "DISCARD record of %u bytes is malformed", rec->len);
		return -EPROTO;
	}
	for (i = 0; i < count; i++) {
		memcpy(&first, p + 8 + 16 * i, 8);
		memcpy(&n, p + 16 + 16 * i, 8);
		if (!n || first >= npages || n > npages - first) {
			snprintf(in->err, sizeof(in->err), "DISCARD range %llu+%llu outside RAM",
				 (unsigned long long)first, (unsigned long long)n);
			return -EPROTO;
		}
	}
	for (i = 0; i < count; i++) {
		uint64_t j;

		memcpy(&first, p + 8 + 16 * i, 8);
		memcpy(&n, p + 16 + 16 * i, 8);
		if (madvise(ram_page_hva(&in->vm->ram, first), n * PAGE_SIZE, MADV_DONTNEED) < 0) {
			snprintf(in->err, sizeof(in->err), "cannot discard pages: %s", strerror(errno));
			return -errno;
		}
		for (j = first; j < first + n; j++)
			bitmap_clear(&in->have, j);
	}
	return 0;
}

static void send_error(struct incoming *in)
{
	if (in->has_rp && in->fd >= 0)
		stream_write(&in->st, REC_ERROR, in->err, (uint32_t)strlen(in->err));
}

static int send_ack(struct incoming *in, uint32_t what)
{
	if (!in->has_rp)
		return 0;
	return stream_write(&in->st, REC_ACK, &what, sizeof(what));
}

/*
 * The urgent channel: a second connection from the source, right after
 * ACK(HEADER), that carries only the pages the fault server asks for, so
 * that they never queue behind the background push.  Its header must be
 * the main one's, with STREAM_F_URGENT.
 */
static int accept_urgent(struct incoming *in, int lfd, const struct stream_header *main)
{
	struct pollfd p = { .fd = lfd, .events = POLLIN };
	struct stream_header h;
	char err[256];
	int ret;

	ret = poll(&p, 1, ACCEPT_URGENT_MS);
	if (ret <= 0) {
		snprintf(in->err, sizeof(in->err), "the source did not open its urgent channel within %d s%s%s",
			 ACCEPT_URGENT_MS / 1000, ret < 0 ? ": " : "", ret < 0 ? strerror(errno) : "");
		return ret < 0 ? -errno : -ETIMEDOUT;
	}
	in->ufd = uri_accept(lfd);
	if (in->ufd < 0) {
		snprintf(in->err, sizeof(in->err), "cannot accept the urgent channel: %s", strerror(-in->ufd));
		return in->ufd;
	}
	stream_init(&in->ust, in->ufd);
	ret = stream_read_header(&in->ust, &h, err, sizeof(err));
	if (ret) {
		snprintf(in->err, sizeof(in->err), "urgent channel: %s", err);
		return ret;
	}
	if (h.flags != ((main->flags & ~STREAM_F_CHANNELS) | STREAM_F_URGENT) || h.ram_size != main->ram_size ||
	    h.ncpus != main->ncpus || h.nslots != main->nslots) {
		snprintf(in->err, sizeof(in->err), "the second connection is not this migration's urgent channel");
		return -EPROTO;
	}
	return 0;
}

/*
 * verify on, before any vCPU runs here: every page set in @which (NULL: all
 * of RAM) must be what the source had at its last stop.
 */
static int incoming_verify(struct incoming *in, const struct bitmap *which)
{
	int ret;

	if (!in->verify)
		return 0;
	ret = verify_check_complete(&in->v, in->err, sizeof(in->err));
	if (!ret)
		ret = verify_ram(&in->v, which, in->err, sizeof(in->err));
	pthread_mutex_lock(&in->m->lock);
	in->m->stats.verify_pages = in->v.compared;
	in->m->stats.verify_ms = in->v.ns / 1000000;
	in->m->stats.verify_bad = in->v.bad;
	pthread_mutex_unlock(&in->m->lock);
	if (!ret)
		info("verify: %llu pages compared with the source's in %llu ms: all equal",
		     (unsigned long long)in->v.compared, (unsigned long long)(in->v.ns / 1000000));
	return ret;
}

static int receive(struct incoming *in)
{
	struct stream_header h;
	struct stream_rec rec;
	char err[256];
	int ret, lfd = -1;

	ret = uri_parse(in->m->uri, &in->uri, err, sizeof(err));
	if (ret) {
		snprintf(in->err, sizeof(in->err), "%s", err);
		return ret;
	}
	in->has_rp = uri_has_return_path(&in->uri);
	if (in->uri.kind == URI_FILE) {
		in->fd = uri_listen(&in->uri);
	} else {
		lfd = uri_listen(&in->uri);
		if (lfd < 0) {
			snprintf(in->err, sizeof(in->err), "cannot listen on %s: %s", in->m->uri, strerror(-lfd));
			return lfd;
		}
		info("waiting for a migration on %s", in->m->uri);
		in->fd = uri_accept(lfd);
	}
	if (in->fd < 0) {
		snprintf(in->err, sizeof(in->err), "cannot open %s: %s", in->m->uri, strerror(-in->fd));
		ret = in->fd;
		goto out_listen;
	}
	stream_init(&in->st, in->fd);
	ret = stream_read_header(&in->st, &h, err, sizeof(err));
	if (ret) {
		snprintf(in->err, sizeof(in->err), "%s", err);
		goto out_listen;
	}
	ret = check_header(in, &h);
	if (ret)
		goto out_listen;
	ret = send_ack(in, ACK_HEADER);
	if (ret) {
		snprintf(in->err, sizeof(in->err), "return path: %s", strerror(-ret));
		goto out_listen;
	}
	if (h.flags & STREAM_F_CHANNELS)
		ret = accept_urgent(in, lfd, &h);
out_listen:
	if (lfd >= 0) {
		close(lfd);
		if (in->uri.kind == URI_UNIX)
			unlink(in->uri.path);
	}
	if (ret)
		return ret;
	migration_set_status(in->m, MIG_ACTIVE);
	in->buf = malloc(STREAM_MAX_PAYLOAD);
	if (!in->buf)
		return -ENOMEM;
	pthread_mutex_lock(&in->m->lock);
	in->m->stats.setup_ms = (stream_now_ns() - in->m->stats.start_ns) / 1000000;
	pthread_mutex_unlock(&in->m->lock);

	for (;;) {
		uint64_t ndata = 0, nzero = 0;

		ret = stream_read_record(&in->st, &rec, in->buf, STREAM_MAX_PAYLOAD, err, sizeof(err));
		if (ret) {
			snprintf(in->err, sizeof(in->err), "%s", err);
			return ret;
		}
		switch (rec.type) {
		case REC_RAM_PAGES:
			ret = load_pages(in, &rec, &ndata, &nzero);
			if (ret)
				return ret;
			break;
		case REC_MACHINE_STATE:
			free(in->state);
			in->state = malloc(rec.len ? rec.len : 1);
			if (!in->state)
				return -ENOMEM;
			memcpy(in->state, rec.payload, rec.len);
			in->state_len = rec.len;
			break;
		case REC_DISCARD:
			ret = discard_pages(in, &rec);
			if (ret)
				return ret;
			break;
		case REC_POSTCOPY_RUN:
			if (!in->postcopy || !in->state) {
				snprintf(in->err, sizeof(in->err), "POSTCOPY_RUN %s",
					 in->postcopy ? "without the machine state" : "in a precopy stream");
				return -EPROTO;
			}
			return POSTCOPY_RUN;
		case REC_END_ROUND:
			pthread_mutex_lock(&in->m->lock);
			in->m->stats.rounds++;
			pthread_mutex_unlock(&in->m->lock);
			if (in->round < UINT16_MAX)
				in->round++;
			break;
		case REC_VERIFY:
			if (!in->verify) {
				snprintf(in->err, sizeof(in->err), "VERIFY record in a stream without verify");
				return -EPROTO;
			}
			ret = verify_take_record(&in->v, rec.payload, rec.len, in->err, sizeof(in->err));
			if (ret)
				return ret;
			break;
		case REC_END:
			if (!in->state) {
				snprintf(in->err, sizeof(in->err), "the stream ended without the machine state");
				return -EPROTO;
			}
			return incoming_verify(in, NULL);
		default:
			snprintf(in->err, sizeof(in->err), "unexpected %s record from the source",
				 stream_rec_name(rec.type));
			return -EPROTO;
		}
		pthread_mutex_lock(&in->m->lock);
		in->m->stats.pages_sent += ndata;
		in->m->stats.zero_pages += nzero;
		in->m->stats.bytes = in->st.bytes_in + in->st.bytes_out;
		pthread_mutex_unlock(&in->m->lock);
	}
}

/*
 * The switch, destination side: from here the fault server owns the
 * connection.  Order matters: RAM is registered before any vCPU runs (a
 * missing page must fault, not read as zero); the acknowledgement is the
 * last thing written on the stream here, so the server goes on with the
 * right sequence numbers.
 */
static int postcopy_start(struct incoming *in, struct faultsrv *fs)
{
	struct ram *ram = &in->vm->ram;
	char why[400];
	int ret;

	/* Before the missing pages are dropped: reading RAM here may map zero pages over them. */
	ret = incoming_verify(in, &in->have);
	if (ret)
		return ret;
	/* The fault server must not inherit guest RAM: it writes it only through UFFDIO_COPY. */
	if (madvise(ram->base, ram->size, MADV_DONTFORK) < 0) {
		snprintf(in->err, sizeof(in->err), "madvise(MADV_DONTFORK): %s", strerror(errno));
		return -errno;
	}
	/*
	 * Every page we do not have must fault: drop whatever the kernel may
	 * have made present there (a huge page around a received one, the
	 * zero page after a read).
	 */
	for (uint64_t i = bitmap_next_clear(&in->have, 0), n = ram_npages(ram), end; i < n;
	     i = bitmap_next_clear(&in->have, end)) {
		end = bitmap_next_set(&in->have, i);
		if (madvise(ram_page_hva(ram, i), (end - i) * PAGE_SIZE, MADV_DONTNEED) < 0) {
			snprintf(in->err, sizeof(in->err), "cannot drop missing pages: %s", strerror(errno));
			return -errno;
		}
	}
	in->uffd = uffd_open(why, sizeof(why));
	if (in->uffd < 0) {
		snprintf(in->err, sizeof(in->err), "%s", why);
		return in->uffd;
	}
	__atomic_store_n(&in->vm->ram_incomplete, true, __ATOMIC_RELEASE);
	ret = uffd_register(in->uffd, ram->base, ram->size);
	if (ret) {
		snprintf(in->err, sizeof(in->err), "cannot register guest RAM with userfaultfd: %s", strerror(-ret));
		return ret;
	}
	ret = state_load(in->vm, in->state, in->state_len);
	if (ret) {
		snprintf(in->err, sizeof(in->err), "the machine state was refused (see above)");
		return ret;
	}
	ret = send_ack(in, ACK_RUNNING);
	if (ret) {
		snprintf(in->err, sizeof(in->err), "cannot acknowledge to the source: %s", strerror(-ret));
		return ret;
	}
	ret = faultsrv_start(fs, in->fd, &in->st, in->ufd, &in->ust, in->uffd, ram->base, ram_npages(ram),
			     &in->have, in->verify ? &in->v : NULL);
	if (ret) {
		snprintf(in->err, sizeof(in->err), "cannot start the fault server: %s", fs->err);
		return ret;
	}
	in->fd = in->ufd = -1;	/* the fault server's now */
	return 0;
}

/* Wait for the fault server: DONE ends postcopy; anything else leaves the VM stopped, RAM kept. */
static int postcopy_wait(struct incoming *in, struct faultsrv *fs)
{
	struct pollfd p = { .fd = fs->ctl_fd, .events = POLLIN };

	for (;;) {
		int msg;

		if (poll(&p, 1, -1) < 0 && errno != EINTR)
			return -errno;
		if (migration_cancelled(in->m)) {
			snprintf(in->err, sizeof(in->err), "vmm is ending");
			return -ECANCELED;
		}
		msg = faultsrv_poll(fs);
		if (msg == FAULTSRV_MSG_DONE) {
			/* Every page is here: the guest runs on with no more faults. */
			uffd_unregister(in->uffd, in->vm->ram.base, in->vm->ram.size);
			close(in->uffd);
			in->uffd = -1;
			__atomic_store_n(&in->vm->ram_incomplete, false, __ATOMIC_RELEASE);
			faultsrv_wait(fs, 10000);
			return 0;
		}
		if (msg == FAULTSRV_MSG_ERROR || msg == FAULTSRV_MSG_EXITED || msg < 0) {
			snprintf(in->err, sizeof(in->err), "the fault server %s: %s",
				 msg == FAULTSRV_MSG_ERROR ? "failed" : "died", fs->err[0] ? fs->err : "no reason given");
			return -EIO;
		}
	}
}

void *incoming_thread(void *arg)
{
	struct migration *m = arg;
	struct incoming in = { .m = m, .vm = m->vm, .fd = -1, .ufd = -1, .uffd = -1, .round = 1 };
	bool switched = false;
	uint64_t now;
	int ret;

	pthread_setname_np(pthread_self(), "mig-in");
	pthread_mutex_lock(&m->lock);
	m->stats.pages_total = ram_npages(&m->vm->ram);
	pthread_mutex_unlock(&m->lock);
	ret = receive(&in);
	if (ret == POSTCOPY_RUN) {
		uint64_t t0 = stream_now_ns();
		struct faultsrv *fs = calloc(1, sizeof(*fs));

		ret = fs ? postcopy_start(&in, fs) : -ENOMEM;
		pthread_mutex_lock(&m->lock);
		m->fs = fs;
		m->stats.switch_ns = t0;
		m->stats.switch_downtime_ms = (stream_now_ns() - t0) / 1000000;
		pthread_mutex_unlock(&m->lock);
		if (!ret) {
			switched = true;
			migration_set_status(m, MIG_POSTCOPY);
			info("postcopy: the guest runs here; the fault server (pid %d) fetches its missing pages",
			     (int)fs->pid);
			ret = vm_start(in.vm);
			if (!ret)
				ret = postcopy_wait(&in, fs);
			pthread_mutex_lock(&m->lock);
			m->stats.postcopy_ms = (stream_now_ns() - t0) / 1000000;
			pthread_mutex_unlock(&m->lock);
		}
	} else if (!ret) {
		ret = state_load(in.vm, in.state, in.state_len);
		if (ret)
			snprintf(in.err, sizeof(in.err), "the machine state was refused (see above)");
		if (!ret) {
			ret = send_ack(&in, ACK_RUNNING);
			if (ret)
				snprintf(in.err, sizeof(in.err), "cannot acknowledge to the source: %s", strerror(-ret));
		}
	}
	now = stream_now_ns();
	pthread_mutex_lock(&m->lock);
	m->stats.total_ms = (now - m->stats.start_ns) / 1000000;
	m->stats.end_ns = now;
	m->stats.bytes = in.st.bytes_in + in.st.bytes_out + in.ust.bytes_in;
	m->stats.state_bytes = in.state_len;
	pthread_mutex_unlock(&m->lock);
	if (!ret) {
		migration_set_status(m, MIG_COMPLETED);
		info("incoming migration from %s completed in %llu ms; the guest runs here", m->uri,
		     (unsigned long long)m->stats.total_ms);
		if (!switched)
			ret = vm_start(in.vm);
	} else if (switched && ret == -ECANCELED) {
		/* vmm is ending (quit, or the guest is done): nothing to report. */
		pthread_mutex_lock(&m->lock);
		m->uffd = in.uffd;
		pthread_mutex_unlock(&m->lock);
		in.uffd = -1;
	} else if (switched) {
		/* The uffd stays open (missing pages must not read as zero); teardown closes it. */
		pthread_mutex_lock(&m->lock);
		m->uffd = in.uffd;
		pthread_mutex_unlock(&m->lock);
		in.uffd = -1;
		/*
		 * The guest already ran here and the source may still hold pages it
		 * lacks: stop the vCPUs, keep every page, keep the monitor.  A vCPU
		 * blocked on a missing page stays blocked (the kernel's wait is not
		 * interruptible on every version): do not wait for it to park.
		 */
		migration_set_error(m, MIG_FAILED, "%s", in.err);
		error(ret, "postcopy failed: %s; the VM is stopped here, its RAM kept", in.err);
		vm_pause_nowait(in.vm, "postcopy-failed");
	} else {
		if (!in.err[0])
			snprintf(in.err, sizeof(in.err), "%s", strerror(-ret));
		send_error(&in);
		migration_set_error(m, MIG_FAILED, "%s", in.err);
		error(ret, "incoming migration failed: %s", in.err);
		vm_request_exit(in.vm, 1, "incoming migration failed: %s", in.err);
	}
	if (in.fd >= 0)
		close(in.fd);
	if (in.ufd >= 0)
		close(in.ufd);
	if (in.uffd >= 0)
		close(in.uffd);
	bitmap_destroy(&in.have);
	verify_destroy(&in.v);
	free(in.buf);
	free(in.state);
	return NULL;
}

int incoming_dump_state(const char *path, int out_fd)
{
	struct stream_header h;
	struct stream_rec rec;
	struct stream st;
	char err[256];
	uint8_t *buf;
	int fd, ret;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return error_errno(-errno, "cannot open %s", path);
	buf = malloc(STREAM_MAX_PAYLOAD);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	stream_init(&st, fd);
	ret = stream_read_header(&st, &h, err, sizeof(err));
	while (!ret) {
		ret = stream_read_record(&st, &rec, buf, STREAM_MAX_PAYLOAD, err, sizeof(err));
		if (ret)
			break;
		if (rec.type == REC_MACHINE_STATE) {
			ssize_t n = write(out_fd, buf, rec.len);

			ret = n == (ssize_t)rec.len ? 0 : error_errno(n < 0 ? -errno : -EIO, "write");
			goto out;
		}
		if (rec.type == REC_END) {
			snprintf(err, sizeof(err), "the stream has no machine state");
			ret = -ENOENT;
		}
	}
	error(ret, "%s: %s", path, err);
out:
	free(buf);
	close(fd);
	return ret;
}
