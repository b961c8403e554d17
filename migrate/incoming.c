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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "migrate/migration.h"
#include "migrate/state.h"
#include "migrate/stream.h"
#include "migrate/uri.h"
#include "vmm/log.h"
#include "vmm/vm.h"

struct incoming {
	struct migration *m;
	struct vm *vm;
	struct uri uri;
	int fd;
	bool has_rp;
	struct stream st;
	uint8_t *buf;
	void *state;
	uint32_t state_len;
	char err[512];
};

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
	if (h->flags) {
		snprintf(in->err, sizeof(in->err), "the stream asks for features this vmm lacks (flags 0x%x)", h->flags);
		return -EINVAL;
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
		close(lfd);
		if (in->uri.kind == URI_UNIX)
			unlink(in->uri.path);
	}
	if (in->fd < 0) {
		snprintf(in->err, sizeof(in->err), "cannot open %s: %s", in->m->uri, strerror(-in->fd));
		return in->fd;
	}
	stream_init(&in->st, in->fd);
	ret = stream_read_header(&in->st, &h, err, sizeof(err));
	if (ret) {
		snprintf(in->err, sizeof(in->err), "%s", err);
		return ret;
	}
	ret = check_header(in, &h);
	if (ret)
		return ret;
	ret = send_ack(in, ACK_HEADER);
	if (ret) {
		snprintf(in->err, sizeof(in->err), "return path: %s", strerror(-ret));
		return ret;
	}
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
		case REC_END_ROUND:
			pthread_mutex_lock(&in->m->lock);
			in->m->stats.rounds++;
			pthread_mutex_unlock(&in->m->lock);
			break;
		case REC_END:
			if (!in->state) {
				snprintf(in->err, sizeof(in->err), "the stream ended without the machine state");
				return -EPROTO;
			}
			return 0;
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

void *incoming_thread(void *arg)
{
	struct migration *m = arg;
	struct incoming in = { .m = m, .vm = m->vm, .fd = -1 };
	uint64_t now;
	int ret;

	pthread_setname_np(pthread_self(), "mig-in");
	pthread_mutex_lock(&m->lock);
	m->stats.pages_total = ram_npages(&m->vm->ram);
	pthread_mutex_unlock(&m->lock);
	ret = receive(&in);
	if (!ret) {
		ret = state_load(in.vm, in.state, in.state_len);
		if (ret)
			snprintf(in.err, sizeof(in.err), "the machine state was refused (see above)");
	}
	if (!ret) {
		ret = send_ack(&in, ACK_RUNNING);
		if (ret)
			snprintf(in.err, sizeof(in.err), "cannot acknowledge to the source: %s", strerror(-ret));
	}
	now = stream_now_ns();
	pthread_mutex_lock(&m->lock);
	m->stats.total_ms = (now - m->stats.start_ns) / 1000000;
	m->stats.end_ns = now;
	m->stats.bytes = in.st.bytes_in + in.st.bytes_out;
	m->stats.state_bytes = in.state_len;
	pthread_mutex_unlock(&m->lock);
	if (!ret) {
		migration_set_status(m, MIG_COMPLETED);
		info("incoming migration from %s completed in %llu ms; the guest runs here", m->uri,
		     (unsigned long long)m->stats.total_ms);
		ret = vm_start(in.vm);
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
