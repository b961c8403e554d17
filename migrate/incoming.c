// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The destination side of a migration: receiving precopy.
 *
 * `vmm run --incoming URI` builds an empty VM of the shape its options give
 * (RAM, vCPUs), waits for the source's channels (or opens the snapshot
 * file), and checks the header against that shape: a stream from a machine
 * of another shape is refused before a single page is written.  Records are
 * checked whole (sequence, size for their type, checksum) before their
 * payload is used, and against the order the stream allows
 * (incoming_order_check(): an END after a DISCARD, a postcopy record in a
 * precopy stream, anything after the state but END or POSTCOPY_RUN are
 * refused); each page index is checked against RAM.  At END the machine
 * state is validated and loaded, the destination acknowledges on the return
 * path and starts the vCPUs; at POSTCOPY_RUN postcopy.c takes over.
 *
 * Any failure is reported once, on stderr and to the source (an ERROR
 * record), and ends this vmm with VM_STATUS_INCOMING: a half-received guest
 * is never run.
 */
#include <errno.h>
#include <poll.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "migrate/channel.h"
#include "migrate/faultsrv.h"
#include "migrate/incoming.h"
#include "migrate/migration.h"
#include "migrate/multifd.h"
#include "migrate/postcopy.h"
#include "migrate/state.h"
#include "migrate/stream.h"
#include "migrate/tls.h"
#include "migrate/uffd.h"
#include "vmm/log.h"
#include "vmm/vm.h"

#define PRECOPY_END 1		/* handle_record(): END, the stream is whole */
#define POSTCOPY_RUN 2		/* handle_record(), receive(): the source switched to postcopy */

/* ---- the order of records ---- */

#define ORDER_FAIL(...) (snprintf(err, errlen, __VA_ARGS__), -EPROTO)

int incoming_order_check(struct incoming_order *o, uint32_t type, char *err, size_t errlen)
{
	const char *name = stream_rec_name(type);
	bool precopy = o->postcopy == POSTCOPY_NONE, advise = precopy || o->postcopy == POSTCOPY_ADVISE;

	if (o->done || o->postcopy >= POSTCOPY_LISTEN)
		return ORDER_FAIL("%s record after the end of the stream", name);
	switch (type) {
	case REC_RAM_PAGES:
	case REC_END_ROUND:
		if (o->state_seen || !advise)
			return ORDER_FAIL("%s record after %s", name, o->state_seen ? "the machine state" : "DISCARD");
		return 0;
	case REC_MULTIFD_SYNC:
		if (!o->multifd)
			return ORDER_FAIL("MULTIFD_SYNC record %s", o->state_seen || !advise ? "after the pages' end" :
					  "in a stream without multifd");
		return 0;
	case REC_VERIFY:
		if (!o->verify)
			return ORDER_FAIL("VERIFY record in a stream without verify");
		if (o->state_seen)
			return ORDER_FAIL("VERIFY record after the machine state");
		return 0;
	case REC_DISCARD:
		if (precopy)
			return ORDER_FAIL("DISCARD record in a precopy stream");
		if (o->state_seen)
			return ORDER_FAIL("DISCARD record after the machine state");
		o->postcopy = POSTCOPY_DISCARD;
		return 0;
	case REC_MACHINE_STATE:
		if (o->state_seen)
			return ORDER_FAIL("a second MACHINE_STATE record");
		o->state_seen = true;
		return 0;
	case REC_END:
		if (!o->state_seen)
			return ORDER_FAIL("the stream ended without the machine state");
		if (!advise)
			return ORDER_FAIL("END after DISCARD: the discarded pages would read as zero");
		o->done = true;
		return 0;
	case REC_POSTCOPY_RUN:
		if (precopy)
			return ORDER_FAIL("POSTCOPY_RUN in a precopy stream");
		if (!o->state_seen)
			return ORDER_FAIL("POSTCOPY_RUN without the machine state");
		o->postcopy = POSTCOPY_LISTEN;
		return 0;
	default:
		return ORDER_FAIL("unexpected %s record from the source", name);
	}
}

/* ---- the header ---- */

/* The RAM and vCPUs of @h must be this destination's. */
static int check_shape(struct incoming *in, const struct stream_header *h)
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
	return 0;
}

/* A postcopy stream: can this destination take it?  Then a received bitmap. */
static int advise_postcopy(struct incoming *in)
{
	const struct ram *ram = &in->vm->ram;
	char why[400];
	int ret;

	if (!in->has_return_path) {
		snprintf(in->err, sizeof(in->err), "a postcopy stream in a file: postcopy needs a return path");
		return -EPROTO;
	}
	/* Say it now, before any page moves: postcopy cannot work here. */
	ret = uffd_check(ram->memfd, why, sizeof(why));
	if (ret) {
		snprintf(in->err, sizeof(in->err), "postcopy is not possible on this destination: %s%s", why,
			 ram->memfd && ret == -EOPNOTSUPP ? " (run it with --memory-backend ram)" : "");
		return ret;
	}
	in->order.postcopy = POSTCOPY_ADVISE;
	migration_set_postcopy(in->m, POSTCOPY_ADVISE);
	/*
	 * Transparent huge pages stay on through the precopy rounds (a first
	 * touch per 2 MiB, not per page: under TCG a fault costs microseconds).
	 * A page written makes its whole 2 MiB present, zero-filled; every
	 * page not received is dropped before RAM is registered with the
	 * userfaultfd (as its DISCARD comes, discard_pages(), or at the switch,
	 * postcopy.c, register_ram), so none reads as zero instead of faulting.
	 */
	return bitmap_init(&in->received, ram_npages(ram));
}

static int check_header(struct incoming *in, const struct stream_header *h)
{
	int ret = check_shape(in, h);

	if (ret)
		return ret;
	if ((h->flags & ~(STREAM_F_POSTCOPY | STREAM_F_CHANNELS | STREAM_F_VERIFY | STREAM_F_MULTIFD |
			  STREAM_MULTIFD_MASK)) ||
	    ((h->flags & STREAM_F_CHANNELS) && !(h->flags & STREAM_F_POSTCOPY)) ||
	    (!!(h->flags & STREAM_F_MULTIFD) != !!STREAM_MULTIFD_N(h->flags)) ||
	    STREAM_MULTIFD_N(h->flags) > MIGRATION_MULTIFD_MAX || ((h->flags & STREAM_F_MULTIFD) && !in->has_return_path)) {
		snprintf(in->err, sizeof(in->err), "the stream asks for features this vmm lacks (flags 0x%x)", h->flags);
		return -EINVAL;
	}
	if (h->flags & STREAM_F_VERIFY) {
		if (verify_init(&in->v, &in->vm->ram, true))
			return -ENOMEM;
		in->verify = in->order.verify = true;
	}
	in->nmultifd = (int)STREAM_MULTIFD_N(h->flags);
	return h->flags & STREAM_F_POSTCOPY ? advise_postcopy(in) : 0;
}

/* ---- records ---- */

#define CHECK_FAIL(...) (snprintf(err, errlen, __VA_ARGS__), -EPROTO)

int incoming_check_pages(const struct stream_rec *rec, uint64_t npages, char *err, size_t errlen)
{
	const uint8_t *p = rec->payload;
	uint64_t i, e, data = 0;
	uint32_t count;

	memcpy(&count, p, 4);
	if (p[4] | p[5] | p[6] | p[7])
		return CHECK_FAIL("RAM_PAGES record with unknown flags before the switch");
	if (count == 0 || count > STREAM_PAGES_MAX || rec->len < 8 + 8ULL * count)
		return CHECK_FAIL("RAM_PAGES record with a bad page count (%u)", count);
	for (i = 0; i < count; i++) {
		memcpy(&e, p + 8 + 8 * i, 8);
		if (e >> 1 >= npages)
			return CHECK_FAIL("page index %llu outside RAM (%llu pages)", (unsigned long long)(e >> 1),
					  (unsigned long long)npages);
		data += !(e & PAGE_ENTRY_ZERO);
	}
	if (rec->len != 8 + 8ULL * count + data * PAGE_SIZE)
		return CHECK_FAIL("RAM_PAGES record of %u bytes does not hold its %llu pages", rec->len,
				  (unsigned long long)data);
	return 0;
}

/*
 * Place the pages of a RAM_PAGES record whose entry list is read and checked
 * (stream_read_head()): its page data is read from the stream straight into
 * guest RAM, one iovec per run of pages adjacent in the host, no copy through
 * a buffer.  Guest RAM is not registered with the userfaultfd before the
 * switch, and a record cut short fails the migration, so a page half written
 * is never run.
 */
int incoming_load_pages(struct incoming *in, struct stream *rx, const struct stream_rec *rec, uint16_t round,
			uint64_t *ndata, uint64_t *nzero, char *err, size_t errlen)
{
	struct iovec iov[STREAM_PAGES_MAX];
	const uint8_t *p = rec->payload;
	int niov = 0, ret;
	uint64_t i, e;
	uint32_t count;

	ret = incoming_check_pages(rec, ram_npages(&in->vm->ram), err, errlen);
	if (ret)
		return ret;
	memcpy(&count, p, 4);
	for (i = 0; i < count; i++) {
		uint8_t *dst;

		memcpy(&e, p + 8 + 8 * i, 8);
		dst = ram_page_hva(&in->vm->ram, e >> 1);
		if (in->received.words)
			bitmap_set_atomic(&in->received, e >> 1);
		if (in->v.round)
			in->v.round[e >> 1] = round;
		if (e & PAGE_ENTRY_ZERO) {
			/* Do not touch (and so allocate) a page that is zero already. */
			if (!ram_page_is_zero(dst))
				memset(dst, 0, PAGE_SIZE);
			(*nzero)++;
			continue;
		}
		if (niov && (uint8_t *)iov[niov - 1].iov_base + iov[niov - 1].iov_len == dst)
			iov[niov - 1].iov_len += PAGE_SIZE;
		else
			iov[niov++] = (struct iovec){ dst, PAGE_SIZE };
		(*ndata)++;
	}
	if (rec->covered == rec->len)	/* read whole already (no data pages) */
		return 0;
	return stream_read_rest(rx, rec, iov, niov, err, errlen);
}

int incoming_check_discard(const struct stream_rec *rec, uint64_t npages, char *err, size_t errlen)
{
	uint64_t first, n;
	uint32_t count;

	memcpy(&count, rec->payload, 4);
	if (rec->len != 8 + 16ULL * count || !count)
		return CHECK_FAIL("DISCARD record of %u bytes is malformed", rec->len);
	if (stream_check_ranges((const uint8_t *)rec->payload + 8, count, npages, &first, &n))
		return CHECK_FAIL("DISCARD range %llu+%llu outside RAM", (unsigned long long)first,
				  (unsigned long long)n);
	return 0;
}

/*
 * A DISCARD record: pages sent in precopy and dirtied since are no longer
 * received, and what the kernel holds there is stale: drop it now, while
 * the source is still sending the rest of the switch, so that the drop of
 * these scattered ranges (a madvise() each, thousands in a busy guest)
 * overlaps the source's send instead of following it.  drop_missing()
 * (postcopy.c) drops the other pages not received at the switch and skips
 * these.  Huge pages go off first: khugepaged must not fill a hole with
 * zeros before RAM is registered with the userfaultfd.
 */
static int discard_pages(struct incoming *in, const struct stream_rec *rec)
{
	struct ram *ram = &in->vm->ram;
	const uint8_t *p = rec->payload;
	uint64_t i, j, first, n;
	uint32_t count;
	int ret;

	ret = incoming_check_discard(rec, ram_npages(ram), in->err, sizeof(in->err));
	if (ret)
		return ret;
	if (!in->dropped.words) {
		ret = bitmap_init(&in->dropped, ram_npages(ram));
		if (ret)
			return ret;
		madvise(ram->base, ram->size, MADV_NOHUGEPAGE);
	}
	memcpy(&count, p, 4);
	migration_set_postcopy(in->m, POSTCOPY_DISCARD);
	for (i = 0; i < count; i++) {
		memcpy(&first, p + 8 + 16 * i, 8);
		memcpy(&n, p + 16 + 16 * i, 8);
		ret = ram_discard(ram, first, n);
		if (ret) {
			snprintf(in->err, sizeof(in->err), "cannot drop discarded pages: %s", strerror(-ret));
			return ret;
		}
		for (j = first; j < first + n; j++) {
			bitmap_clear(&in->received, j);
			bitmap_set(&in->dropped, j);
		}
	}
	return 0;
}
static void send_error(struct incoming *in)
{
	if (in->has_return_path && in->main->fd >= 0)
		stream_write(&in->main->tx, REC_ERROR, in->err, (uint32_t)strlen(in->err));
}

int incoming_send_ack(struct incoming *in, uint32_t what)
{
	int ret;

	if (!in->has_return_path)
		return 0;
	ret = stream_write(&in->main->tx, REC_ACK, &what, sizeof(what));
	if (ret)
		snprintf(in->err, sizeof(in->err), "cannot acknowledge to the source: %s", strerror(-ret));
	return ret;
}

int incoming_load_state(struct incoming *in)
{
	int ret = state_load(in->vm, in->state, in->state_len);

	/* state_load() has said what is wrong, naming the node: that is the one line. */
	if (ret) {
		snprintf(in->err, sizeof(in->err), "the machine state was refused");
		in->reported = true;
	}
	return ret;
}

int incoming_verify(struct incoming *in, const struct bitmap *which)
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

/* Use one record, already checked against the order: 0, PRECOPY_END, POSTCOPY_RUN, or -errno. */
static int handle_record(struct incoming *in, const struct stream_rec *rec)
{
	uint64_t ndata = 0, nzero = 0, sync_n;
	int ret = 0;

	switch (rec->type) {
	case REC_RAM_PAGES:
		ret = incoming_load_pages(in, &in->main->rx, rec, in->round, &ndata, &nzero, in->err, sizeof(in->err));
		break;
	case REC_MULTIFD_SYNC:
		memcpy(&sync_n, rec->payload, 8);
		ret = multifd_recv_sync(in->mf, sync_n, in->err, sizeof(in->err));
		break;
	case REC_MACHINE_STATE:
		in->state = malloc(rec->len);
		if (!in->state)
			return -ENOMEM;
		memcpy(in->state, rec->payload, rec->len);
		in->state_len = rec->len;
		in->state_ns = stream_now_ns();
		break;
	case REC_DISCARD:
		ret = discard_pages(in, rec);
		break;
	case REC_VERIFY:
		ret = verify_take_record(&in->v, rec->payload, rec->len, in->err, sizeof(in->err));
		break;
	case REC_END_ROUND:
		if (in->round < UINT16_MAX)
			in->round++;
		pthread_mutex_lock(&in->m->lock);
		in->m->stats.rounds++;
		pthread_mutex_unlock(&in->m->lock);
		break;
	case REC_POSTCOPY_RUN:
		return POSTCOPY_RUN;
	case REC_END:
		ret = incoming_verify(in, NULL);
		return ret ? ret : PRECOPY_END;
	}
	pthread_mutex_lock(&in->m->lock);
	in->m->stats.precopy_cpu_ns = stream_thread_cpu_ns() - in->cpu0_ns;
	in->m->stats.pages_sent += ndata;
	in->m->stats.zero_pages += nzero;
	in->m->stats.bytes = channel_bytes(in->main) + multifd_recv_bytes(in->mf);
	in->m->stats.multifd_bytes = multifd_recv_bytes(in->mf);
	pthread_mutex_unlock(&in->m->lock);
	return ret;
}

/* ---- the channels ---- */

/*
 * The main channel: the next connection whose header comes whole within
 * peer-timeout and reads as a stream.  Anything else (silence, a trickle,
 * garbage) is logged and dropped, and the next connection is taken: a bad
 * client never keeps the real source out.  A file has one try.
 */
static int accept_main(struct incoming *in, int lfd, struct stream_header *h)
{
	int ret;

	for (;;) {
		in->main = migration_channel(in->m, CHANNEL_MAIN);
		ret = channel_accept(in->main, lfd, -1, h, in->err, sizeof(in->err));
		if (!ret || in->uri.kind == URI_FILE || migration_cancelled(in->m))
			return ret;
		if (ret != -EPROTO && ret != -EBADMSG && ret != -ETIMEDOUT && ret != -EPIPE && ret != -ECONNRESET &&
		    ret != -EACCES)
			return ret;
		warn("ignored a connection on %s: %s; waiting for the next", in->m->uri, in->err);
		in->err[0] = '\0';
	}
}

/*
 * The next connection for @c within @timeout_ms; one that TLS refuses (not
 * authenticated, or not bound to this migration's session: a third party)
 * is dropped and the next one taken, within the same deadline.
 */
static int accept_trusted(struct incoming *in, struct channel *c, int lfd, int timeout_ms, struct stream_header *h)
{
	uint64_t until = stream_now_ns() + (uint64_t)timeout_ms * 1000000ULL, now;
	int ret;

	for (;;) {
		ret = channel_accept(c, lfd, timeout_ms, h, in->err, sizeof(in->err));
		now = stream_now_ns();
		if (ret != -EACCES || migration_cancelled(in->m) || now >= until)
			return ret;
		warn("ignored a connection on %s: %s", in->m->uri, in->err);
		in->err[0] = '\0';
		timeout_ms = (int)((until - now) / 1000000) + 1;
	}
}

/* The urgent channel: right after ACK(HEADER), its header the main one's with STREAM_F_URGENT. */
static int accept_urgent(struct incoming *in, int lfd, const struct stream_header *h)
{
	struct stream_header uh;
	int ret;

	in->urgent = migration_channel(in->m, CHANNEL_URGENT);
	ret = accept_trusted(in, in->urgent, lfd, in->urgent->peer_timeout_ms, &uh);
	if (!ret && (uh.ram_size != h->ram_size || uh.ncpus != h->ncpus || uh.nslots != h->nslots ||
		     uh.flags != ((h->flags & ~(STREAM_F_CHANNELS | STREAM_F_MULTIFD | STREAM_MULTIFD_MASK)) |
				  STREAM_F_URGENT))) {
		snprintf(in->err, sizeof(in->err), "the second connection is not this migration's urgent channel");
		ret = -EPROTO;
	}
	return ret;
}

/* Multifd connection @i: its header the main one's, marked as that connection. */
static int accept_multifd(struct incoming *in, int lfd, const struct stream_header *h, int i)
{
	struct channel *c = migration_channel(in->m, (enum channel_role)(CHANNEL_MULTIFD + i));
	uint32_t want = (h->flags & ~(STREAM_F_CHANNELS | STREAM_F_MULTIFD | STREAM_MULTIFD_MASK)) |
			STREAM_F_MULTIFD_CONN | (uint32_t)i << STREAM_MULTIFD_SHIFT;
	struct stream_header mh;
	int ret;

	ret = accept_trusted(in, c, lfd, c->peer_timeout_ms, &mh);
	if (!ret && (mh.ram_size != h->ram_size || mh.ncpus != h->ncpus || mh.nslots != h->nslots ||
		     mh.flags != want)) {
		snprintf(in->err, sizeof(in->err), "connection %d is not this migration's multifd connection %d",
			 i + 2, i);
		ret = -EPROTO;
	}
	return ret;
}

/* Listen (or open the file), take the main channel, check its header, and for postcopy the urgent one. */
static int open_channels(struct incoming *in)
{
	struct stream_header h;
	int ret, lfd;

	lfd = uri_listen(&in->uri, in->err, sizeof(in->err));
	if (lfd < 0)
		return lfd;
	pthread_mutex_lock(&in->m->lock);
	in->m->listen_fd = in->uri.kind == URI_FILE ? -1 : lfd;
	pthread_mutex_unlock(&in->m->lock);
	if (in->uri.kind != URI_FILE)
		info("waiting for a migration on %s%s%s", in->m->uri, in->m->tls ? " with TLS, " : "",
		     in->m->tls ? tls_creds_kind(in->m->tls) : "");
	if (in->uri.kind == URI_TCP && !in->m->tls && !uri_is_loopback(&in->uri))
		warn("no tls-creds: anyone who can reach %s can write this VM's memory and state (--tls-creds DIR)",
		     in->m->uri);
	ret = accept_main(in, lfd, &h);
	/* The time a destination waited for its source is no part of the migration: its clock starts now. */
	pthread_mutex_lock(&in->m->lock);
	in->m->stats.wait_ms = (stream_now_ns() - in->m->stats.start_ns) / 1000000;
	in->m->stats.start_ns = stream_now_ns();
	pthread_mutex_unlock(&in->m->lock);
	if (!ret)
		ret = check_header(in, &h);
	if (!ret)
		ret = incoming_send_ack(in, ACK_HEADER);
	if (!ret && (h.flags & STREAM_F_CHANNELS))
		ret = accept_urgent(in, lfd, &h);
	for (int i = 0; !ret && i < in->nmultifd; i++)
		ret = accept_multifd(in, lfd, &h, i);
	if (!ret && in->nmultifd) {
		ret = multifd_recv_start(&in->mf, in, &in->m->channels[CHANNEL_MULTIFD], in->nmultifd, in->main,
					 in->main->peer_timeout_ms);
		if (ret)
			snprintf(in->err, sizeof(in->err), "cannot start the multifd threads: %s", strerror(-ret));
		in->order.multifd = !ret;
		pthread_mutex_lock(&in->m->lock);
		in->m->stats.multifd_channels = (uint64_t)in->nmultifd;
		pthread_mutex_unlock(&in->m->lock);
	}
	/*
	 * From here on the source is never silent for long: a record begins
	 * within peer-timeout.  With multifd the main connection is silent for a
	 * round at a time: the multifd threads hold the deadline until they end.
	 */
	in->main->rx.idle_ms = in->nmultifd ? 0 : in->main->peer_timeout_ms;
	pthread_mutex_lock(&in->m->lock);
	in->m->listen_fd = -1;
	pthread_mutex_unlock(&in->m->lock);
	if (in->uri.kind != URI_FILE) {
		close(lfd);
		if (in->uri.kind == URI_UNIX)
			unlink(in->uri.path);
	}
	return ret;
}

/* ---- postcopy recovery ---- */

#define RESUME_POLL_MS 200	/* how often a listening destination looks for another migrate_recover */

/* A resumed connection of @role: this destination's shape, and the flags of a resume. */
static int resume_take(struct incoming *in, int lfd, enum channel_role role, int timeout_ms)
{
	struct channel *c = migration_channel(in->m, role);
	uint32_t want = STREAM_F_POSTCOPY | STREAM_F_RESUME |
			(role == CHANNEL_URGENT ? STREAM_F_URGENT : STREAM_F_CHANNELS);
	struct stream_header h;
	int ret;

	ret = channel_accept(c, lfd, timeout_ms, &h, in->err, sizeof(in->err));
	if (!ret)
		ret = check_shape(in, &h);
	if (!ret && (h.flags & ~STREAM_F_VERIFY) != want) {
		snprintf(in->err, sizeof(in->err), "the %s connection does not resume this migration (flags 0x%x)",
			 channel_role_name(role), h.flags);
		ret = -EPROTO;
	}
	if (ret && c->fd >= 0) {
		send_error(in);
		channel_close(c);
	}
	return ret;
}

/* The received bitmap, @npages bits at @bits, as the source needs it to resume. */
static int send_recv_bitmap(struct incoming *in, const uint64_t *bits, uint64_t npages)
{
	uint64_t words = (npages + 63) / 64;
	struct iovec iov[2] = { { &npages, 8 }, { (void *)bits, 8 * words } };
	int ret;

	if (8 + 8 * words > STREAM_MAX_PAYLOAD) {
		snprintf(in->err, sizeof(in->err), "too much RAM to resume (%llu pages)", (unsigned long long)npages);
		return -EFBIG;
	}
	ret = stream_write_record(&in->main->tx, REC_RECV_BITMAP, iov, 2);
	if (ret)
		snprintf(in->err, sizeof(in->err), "cannot send the received pages: %s", strerror(-ret));
	return ret;
}

int incoming_accept_resume(struct incoming *in, const char *uri, const uint64_t *received)
{
	struct migration *m = in->m;
	struct uri u;
	int lfd, ret;

	ret = uri_parse(uri, &u, in->err, sizeof(in->err));
	if (ret)
		return ret;
	lfd = uri_listen(&u, in->err, sizeof(in->err));
	if (lfd < 0)
		return lfd;
	pthread_mutex_lock(&m->lock);
	m->listen_fd = lfd;
	pthread_mutex_unlock(&m->lock);
	info("postcopy: waiting on %s for the source to resume ('migrate_resume URI' there)", uri);
	for (;;) {
		struct pollfd p = { .fd = lfd, .events = POLLIN };
		bool again;

		ret = poll(&p, 1, RESUME_POLL_MS);
		if (migration_cancelled(m)) {
			ret = -ECANCELED;
			break;
		}
		pthread_mutex_lock(&m->lock);
		again = m->recover_uri[0] != '\0';
		pthread_mutex_unlock(&m->lock);
		if (again) {
			ret = 1;
			break;
		}
		if (ret <= 0)
			continue;
		/* Anything that is not this migration's source resuming is dropped, and the next one taken. */
		ret = resume_take(in, lfd, CHANNEL_MAIN, 0);
		if (!ret)
			ret = resume_take(in, lfd, CHANNEL_URGENT, in->main->peer_timeout_ms);
		if (!ret)
			ret = send_recv_bitmap(in, received, ram_npages(&in->vm->ram));
		if (!ret)
			break;
		warn("postcopy recovery: ignored a connection on %s: %s", uri, in->err);
		migration_close_channels(m);
		in->err[0] = '\0';
	}
	pthread_mutex_lock(&m->lock);
	m->listen_fd = -1;
	pthread_mutex_unlock(&m->lock);
	close(lfd);
	if (u.kind == URI_UNIX)
		unlink(u.path);
	return ret;
}

/*
 * A resumed source, after this destination completed: every page is here
 * (END_OF_COPY was lost on the way).  The source may say POSTCOPY_DONE or
 * simply close; anything else is refused.
 */
static int answer_resumed(struct incoming *in)
{
	struct stream_rec rec;
	uint8_t buf[STREAM_ERROR_MAX];
	char err[256];
	int ret;

	ret = stream_write(&in->main->tx, REC_END_OF_COPY, NULL, 0);
	if (ret) {
		snprintf(in->err, sizeof(in->err), "cannot send END_OF_COPY: %s", strerror(-ret));
		return ret;
	}
	in->main->rx.idle_ms = in->main->peer_timeout_ms;
	ret = stream_read_record(&in->main->rx, &rec, buf, sizeof(buf), err, sizeof(err));
	if (ret == -ECONNRESET || ret == -EPIPE || (!ret && rec.type == REC_POSTCOPY_DONE))
		return 0;
	if (ret)
		snprintf(in->err, sizeof(in->err), "%s", err);
	else
		snprintf(in->err, sizeof(in->err), "unexpected %s record after END_OF_COPY", stream_rec_name(rec.type));
	return ret ? ret : -EPROTO;
}

void *incoming_answer_thread(void *arg)
{
	struct migration *m = arg;
	struct incoming *in = calloc(1, sizeof(*in));
	struct bitmap all = { 0 };
	char uri[320];
	int ret;

	pthread_setname_np(pthread_self(), "mig-answer");
	ret = in ? bitmap_init(&all, ram_npages(&m->vm->ram)) : -ENOMEM;
	if (!ret) {
		in->m = m;
		in->vm = m->vm;
		in->main = &m->channels[CHANNEL_MAIN];
		in->has_return_path = true;
		bitmap_fill(&all);
	}
	/* Listen where migrate_recover says, again where a later one says. */
	while (!ret) {
		pthread_mutex_lock(&m->lock);
		snprintf(uri, sizeof(uri), "%s", m->recover_uri);
		m->recover_uri[0] = '\0';
		pthread_mutex_unlock(&m->lock);
		ret = incoming_accept_resume(in, uri, all.words);
		if (ret == 1)
			ret = 0;
		else if (!ret)
			break;
	}
	if (!ret)
		ret = answer_resumed(in);
	migration_close_channels(m);
	pthread_mutex_lock(&m->lock);
	m->status = MIGRATION_STATUS_COMPLETED;
	m->stats.recoveries += !ret;
	pthread_mutex_unlock(&m->lock);
	if (!ret)
		info("postcopy: told the resumed source that every page is here; it completes too");
	else if (ret != -ECANCELED)
		warn("postcopy: could not answer the resumed source: %s", in && in->err[0] ? in->err : strerror(-ret));
	bitmap_destroy(&all);
	free(in);
	return NULL;
}

/*
 * The main connection carries a record that must follow every page of
 * precopy (the source closed the multifd connections before it): wait
 * until each multifd thread has read its connection to the end.  The
 * record's deadline, and the main connection's idle one, start again.
 */
static int end_multifd(struct incoming *in)
{
	int ret = multifd_recv_finish(in->mf, in->err, sizeof(in->err));

	in->order.multifd = false;
	in->main->rx.idle_ms = in->main->peer_timeout_ms;
	in->main->rx.rec_deadline_ns = in->main->rx.timeout_ms ?
				       stream_now_ns() + (uint64_t)in->main->rx.timeout_ms * 1000000ULL : 0;
	return ret;
}

/* Receive until END (0) or POSTCOPY_RUN; -errno with in->err on any failure. */
static int receive(struct incoming *in)
{
	struct stream_rec rec;
	char err[256];
	int ret;

	ret = uri_parse(in->m->uri, &in->uri, in->err, sizeof(in->err));
	if (ret)
		return ret;
	in->has_return_path = uri_has_return_path(&in->uri);
	ret = open_channels(in);
	if (ret)
		return ret;
	migration_set_status(in->m, MIGRATION_STATUS_ACTIVE);
	in->buf = malloc(STREAM_MAX_PAYLOAD);
	if (!in->buf)
		return -ENOMEM;
	pthread_mutex_lock(&in->m->lock);
	in->m->stats.setup_ms = (stream_now_ns() - in->m->stats.start_ns) / 1000000;
	pthread_mutex_unlock(&in->m->lock);
	in->cpu0_ns = stream_thread_cpu_ns();
	for (;;) {
		ret = stream_read_head(&in->main->rx, &rec, in->buf, STREAM_MAX_PAYLOAD, err, sizeof(err));
		/* A multifd thread that fails shuts the main connection down: its reason is the one. */
		if (ret && !(in->mf && multifd_recv_failed(in->mf, in->err, sizeof(in->err))))
			snprintf(in->err, sizeof(in->err), "%s", err);
		if (ret)
			return ret;
		/* VERIFY only brings digests, compared at the end: it may come before the last pages. */
		if (in->order.multifd && rec.type != REC_MULTIFD_SYNC && rec.type != REC_END_ROUND &&
		    rec.type != REC_VERIFY) {
			ret = end_multifd(in);
			if (ret)
				return ret;
		}
		ret = incoming_order_check(&in->order, rec.type, in->err, sizeof(in->err));
		if (!ret)
			ret = handle_record(in, &rec);
		if (ret)
			return ret == PRECOPY_END ? 0 : ret;
	}
}

/* ---- the thread ---- */

/* The vCPUs run here: the destination's part of the downtime ends. */
static void load_started(struct incoming *in)
{
	pthread_mutex_lock(&in->m->lock);
	in->m->stats.load_start_ms = (stream_now_ns() - in->state_ns) / 1000000;
	in->m->stats.started_wall_us = stream_wall_us();
	pthread_mutex_unlock(&in->m->lock);
}

/* The switch and postcopy (postcopy.c); *@switched once the vCPUs run here. */
static int run_postcopy(struct incoming *in, bool *switched)
{
	struct migration *m = in->m;
	uint64_t t0 = stream_now_ns();
	struct faultsrv *fs = calloc(1, sizeof(*fs));
	int ret;

	ret = fs ? postcopy_incoming_start(in, fs) : -ENOMEM;
	pthread_mutex_lock(&m->lock);
	m->stats.switch_ns = t0;
	if (ret)
		m->fs = fs;	/* the teardown frees it */
	pthread_mutex_unlock(&m->lock);
	if (ret)
		return ret;
	*switched = true;
	pthread_mutex_lock(&m->lock);
	m->status = MIGRATION_STATUS_POSTCOPY;
	m->postcopy = POSTCOPY_RUNNING;
	pthread_mutex_unlock(&m->lock);
	/* The vCPUs first, then the fault server (postcopy_incoming_spawn() says why). */
	ret = vm_start(in->vm);
	if (!ret)
		load_started(in);
	if (!ret)
		ret = postcopy_incoming_spawn(in, fs);
	/* Only now: migration_cancel() shuts down the server's control socket, made by the spawn. */
	pthread_mutex_lock(&m->lock);
	m->fs = fs;
	pthread_mutex_unlock(&m->lock);
	if (!ret)
		info("postcopy: the guest runs here; the fault server (pid %d) fetches its missing pages",
		     (int)fs->pid);
	if (!ret)
		ret = postcopy_incoming_wait(in, fs);
	pthread_mutex_lock(&m->lock);
	m->stats.postcopy_ms = (stream_now_ns() - t0) / 1000000;
	pthread_mutex_unlock(&m->lock);
	return ret;
}

/* How it ended: the figures, the message (once), and the VM's fate. */
static void finish(struct incoming *in, int ret, bool switched)
{
	struct migration *m = in->m;
	uint64_t now = stream_now_ns();

	pthread_mutex_lock(&m->lock);
	m->stats.total_ms = (now - m->stats.start_ns) / 1000000;
	m->stats.end_ns = now;
	m->stats.bytes = migration_channels_bytes(m);
	m->stats.state_bytes = in->state_len;
	/* The uffd outlives a failed postcopy (missing pages must not read as zero); teardown closes it. */
	if (switched && ret)
		m->uffd = in->uffd;
	pthread_mutex_unlock(&m->lock);
	if (switched && ret)
		in->uffd = -1;
	if (!ret) {
		/* Started before "completed" shows, so that the figures a reader sees then are whole. */
		if (!switched && vm_start(in->vm))
			vm_fail(in->vm, "cannot start the vCPUs");
		else if (!switched)
			load_started(in);
		migration_set_status(m, MIGRATION_STATUS_COMPLETED);
		info("incoming migration from %s completed in %llu ms; the guest runs here", m->uri,
		     (unsigned long long)m->stats.total_ms);
	} else if (!switched && migration_cancelled(m)) {
		/* migrate_cancel, quit or a signal: nothing ran here; the source's guest goes on there. */
		snprintf(in->err, sizeof(in->err), "cancelled on the destination");
		send_error(in);
		migration_set_error(m, MIGRATION_STATUS_CANCELLED, "%s", in->err);
		info("incoming migration cancelled");
		vm_request_exit(in->vm, VM_STATUS_INCOMING, "incoming migration cancelled");
	} else if (switched && ret == -ECANCELED) {
		/* vmm is ending (quit, or the guest is done): nothing to report. */
	} else if (switched) {
		/*
		 * The guest already ran here and the source may still hold pages it
		 * lacks: stop the vCPUs, keep every page, keep the monitor.  A vCPU
		 * blocked on a missing page stays blocked (the kernel's wait is not
		 * interruptible on every version): do not wait for it to park.
		 */
		migration_set_error(m, MIGRATION_STATUS_FAILED, "%s", in->err);
		error(ret, "postcopy failed: %s; the VM is stopped here, its RAM kept", in->err);
		vm_pause_nowait(in->vm, "postcopy-failed");
	} else {
		if (!in->err[0])
			snprintf(in->err, sizeof(in->err), "%s", strerror(-ret));
		send_error(in);
		migration_set_error(m, MIGRATION_STATUS_FAILED, "%s", in->err);
		if (!in->reported)
			error(ret, "incoming migration failed: %s", in->err);
		vm_request_exit(in->vm, VM_STATUS_INCOMING, "incoming migration failed: %s", in->err);
	}
}

void *incoming_thread(void *arg)
{
	struct migration *m = arg;
	struct incoming *in = m->in;
	bool switched = false;
	int ret;

	pthread_setname_np(pthread_self(), "mig-in");
	in->m = m;
	in->vm = m->vm;
	in->uffd = -1;
	in->round = 1;
	in->main = &m->channels[CHANNEL_MAIN];
	pthread_mutex_lock(&m->lock);
	m->stats.pages_total = ram_npages(&m->vm->ram);
	pthread_mutex_unlock(&m->lock);
	ret = receive(in);
	if (ret == POSTCOPY_RUN) {
		ret = run_postcopy(in, &switched);
	} else if (!ret) {
		ret = incoming_load_state(in);
		if (!ret)
			ret = incoming_send_ack(in, ACK_RUNNING);
	}
	/* Before the channels close under them; they have ended unless it failed. */
	multifd_recv_free(in->mf);
	in->mf = NULL;
	finish(in, ret, switched);
	migration_close_channels(m);
	if (in->uffd >= 0)
		close(in->uffd);
	bitmap_destroy(&in->received);
	bitmap_destroy(&in->dropped);
	verify_destroy(&in->v);
	free(in->buf);
	free(in->state);
	pthread_mutex_lock(&m->lock);
	m->in = NULL;
	pthread_mutex_unlock(&m->lock);
	free(in);
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
