// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The migration stream (see stream.h and docs/design.md).  All integers are
 * little endian on the wire; this code assumes a little-endian host (x86).
 *
 * Rate limiting: a writer accounts the bytes it sent in a window and sleeps
 * once it is ahead of max_bw; the window restarts every 100 ms so that a
 * change of the limit takes effect at once.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "migrate/crc32c.h"
#include "migrate/stream.h"

#define BW_WINDOW_NS 100000000ULL

uint64_t stream_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

uint64_t stream_wall_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000ULL + (uint64_t)ts.tv_nsec / 1000;
}

uint64_t stream_thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

void stream_init(struct stream *s, int fd)
{
	memset(s, 0, sizeof(*s));
	s->fd = fd;
}

static int write_full(int fd, struct iovec *iov, int iovcnt)
{
	while (iovcnt > 0) {
		ssize_t n = writev(fd, iov, iovcnt);

		if (n < 0 && errno == EINTR)
			continue;
		/* SO_SNDTIMEO ran out: the peer stopped reading. */
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return -ETIMEDOUT;
		if (n < 0)
			return -errno;
		while (n > 0 && iovcnt > 0) {
			if ((size_t)n >= iov->iov_len) {
				n -= (ssize_t)iov->iov_len;
				iov++;
				iovcnt--;
			} else {
				iov->iov_base = (char *)iov->iov_base + n;
				iov->iov_len -= (size_t)n;
				n = 0;
			}
		}
		while (iovcnt > 0 && iov->iov_len == 0) {
			iov++;
			iovcnt--;
		}
	}
	return 0;
}

/* Consume @n bytes read from the front of @iov (*@iovcnt entries). */
static void iov_advance(struct iovec **iov, int *iovcnt, size_t n)
{
	while (*iovcnt > 0 && (n > 0 || !(*iov)->iov_len)) {
		size_t k = n < (*iov)->iov_len ? n : (*iov)->iov_len;

		(*iov)->iov_base = (char *)(*iov)->iov_base + k;
		(*iov)->iov_len -= k;
		n -= k;
		if (!(*iov)->iov_len) {
			(*iov)++;
			(*iovcnt)--;
		}
	}
}

/*
 * Read into @iov until at least @min (> 0) bytes have come (and at most all of
 * @iov), by the monotonic @deadline_ns (0: none): the wait is poll()ed, so
 * bytes that trickle in do not move the deadline.  On a socket what has
 * already arrived is taken without a poll first (MSG_DONTWAIT: the fd stays
 * blocking for its writers).  The bytes read, or -ETIMEDOUT, -EPIPE (closed
 * early), -errno.  @iov is consumed.
 */
static ssize_t read_iov(int fd, struct iovec *iov, int iovcnt, size_t min, uint64_t deadline_ns)
{
	bool sock = true;
	size_t got = 0;

	iov_advance(&iov, &iovcnt, 0);
	while (iovcnt > 0 && got < min) {
		struct msghdr mh = { .msg_iov = iov, .msg_iovlen = (size_t)(iovcnt > IOV_MAX ? IOV_MAX : iovcnt) };
		ssize_t n = -1;

		if (sock) {
			n = recvmsg(fd, &mh, MSG_DONTWAIT);
			if (n < 0 && errno == ENOTSOCK)
				sock = false;
			else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				return -errno;
		}
		if (n < 0 && deadline_ns) {
			struct pollfd pfd = { .fd = fd, .events = POLLIN };
			uint64_t now = stream_now_ns();
			int r;

			if (now >= deadline_ns)
				return -ETIMEDOUT;
			r = poll(&pfd, 1, (int)((deadline_ns - now + 999999) / 1000000));
			if (r < 0 && errno != EINTR)
				return -errno;
			if (r == 0)
				return -ETIMEDOUT;
			if (r < 0)
				continue;
		}
		if (n < 0) {
			n = readv(fd, iov, (int)mh.msg_iovlen);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				return -errno;
		}
		if (n == 0)
			return -EPIPE;
		got += (size_t)n;
		iov_advance(&iov, &iovcnt, (size_t)n);
	}
	return (ssize_t)got;
}

/* Read exactly the bytes of @iov by @deadline_ns: 0, or -errno as read_iov(). */
static int read_full_iov(int fd, struct iovec *iov, int iovcnt, uint64_t deadline_ns)
{
	size_t len = 0;
	ssize_t n;
	int i;

	for (i = 0; i < iovcnt; i++)
		len += iov[i].iov_len;
	n = len ? read_iov(fd, iov, iovcnt, len, deadline_ns) : 0;
	return n < 0 ? (int)n : 0;
}

static int read_full(int fd, void *buf, size_t len, uint64_t deadline_ns)
{
	struct iovec iov = { buf, len };

	return read_full_iov(fd, &iov, 1, deadline_ns);
}

/* The deadline of a read that starts now: @ms from now, 0 if @ms is 0 (none). */
static uint64_t deadline_in(int ms)
{
	return ms > 0 ? stream_now_ns() + (uint64_t)ms * 1000000ULL : 0;
}

/* How a failed read reads in a message. */
static const char *read_error(int ret)
{
	/* Kernel TLS: a record that fails its authentication tag, or a record that is not data (an alert). */
	return ret == -EPIPE ? "connection closed" : ret == -ETIMEDOUT ? "the peer went silent" :
	       ret == -EBADMSG ? "a TLS record failed authentication: tampered with or corrupted in flight" :
	       ret == -EIO ? "input/output error (with TLS: the peer sent an alert, not data)" : strerror(-ret);
}

/* A record that could not be read whole: cut short, or (kernel TLS) refused by its tag. */
static void rec_read_error(char *err, size_t errlen, const char *name, int ret)
{
	snprintf(err, errlen, ret == -EBADMSG ? "%s record: %s" : "truncated %s record (%s)", name, read_error(ret));
}

static void stream_throttle(struct stream *s, uint64_t bytes)
{
	uint64_t bw = __atomic_load_n(&s->max_bw, __ATOMIC_RELAXED), now = stream_now_ns(), due;

	if (!bw) {
		s->bw_start_ns = 0;
		return;
	}
	if (!s->bw_start_ns || now - s->bw_start_ns > BW_WINDOW_NS) {
		s->bw_start_ns = now;
		s->bw_bytes = 0;
	}
	s->bw_bytes += bytes;
	due = s->bw_start_ns + s->bw_bytes * 1000000000ULL / bw;
	if (due > now) {
		struct timespec ts = { (time_t)((due - now) / 1000000000ULL), (long)((due - now) % 1000000000ULL) };

		nanosleep(&ts, NULL);
	}
}

void stream_header_for(struct stream_header *h, const struct ram *ram, int ncpus, uint32_t flags)
{
	int i;

	memset(h, 0, sizeof(*h));
	h->version = STREAM_VERSION;
	h->flags = flags;
	h->page_size = PAGE_SIZE;
	h->ncpus = (uint32_t)ncpus;
	h->ram_size = ram->size;
	h->nslots = (uint32_t)ram->nslots;
	for (i = 0; i < ram->nslots; i++) {
		h->slot[i].gpa = ram->slot[i].gpa;
		h->slot[i].size = ram->slot[i].size;
	}
}

static size_t header_len(uint32_t nslots)
{
	return STREAM_HEADER_FIXED + 16 * (size_t)nslots + 4;
}

int stream_write_header(struct stream *s, const struct stream_header *h)
{
	uint8_t buf[STREAM_HEADER_FIXED + 16 * RAM_SLOTS_MAX + 4] = { 0 };
	uint32_t len = (uint32_t)header_len(h->nslots), crc, i;
	struct iovec iov;

	memcpy(buf, STREAM_MAGIC, 8);
	memcpy(buf + 8, &h->version, 4);
	memcpy(buf + 12, &len, 4);
	memcpy(buf + 16, &h->flags, 4);
	memcpy(buf + 20, &h->page_size, 4);
	memcpy(buf + 24, &h->ram_size, 8);
	memcpy(buf + 32, &h->ncpus, 4);
	memcpy(buf + 36, &h->nslots, 4);
	memcpy(buf + 40, h->binding, STREAM_BINDING_LEN);
	for (i = 0; i < h->nslots; i++) {
		memcpy(buf + STREAM_HEADER_FIXED + 16 * i, &h->slot[i].gpa, 8);
		memcpy(buf + STREAM_HEADER_FIXED + 16 * i + 8, &h->slot[i].size, 8);
	}
	crc = crc32c(0, buf, len - 4);
	memcpy(buf + len - 4, &crc, 4);
	iov = (struct iovec){ buf, len };
	s->bytes_out += len;
	return write_full(s->fd, &iov, 1);
}

int stream_read_header(struct stream *s, struct stream_header *h, char *err, size_t errlen)
{
	uint8_t buf[STREAM_HEADER_FIXED + 16 * RAM_SLOTS_MAX + 4];
	uint32_t len, crc, want, i;
	uint64_t deadline;
	int ret;

	memset(h, 0, sizeof(*h));
	deadline = deadline_in(s->timeout_ms);
	ret = read_full(s->fd, buf, 16, deadline);
	if (ret) {
		snprintf(err, errlen, "no stream header (%s)", read_error(ret));
		return ret;
	}
	if (memcmp(buf, STREAM_MAGIC, 8)) {
		/* A TLS handshake record (22), version 3.x: the peer was given tls-creds, this side not. */
		snprintf(err, errlen, "bad magic: not a vmm migration stream%s", buf[0] == 22 && buf[1] == 3 ?
			 " (the peer speaks TLS: give this side tls-creds too)" : "");
		return -EPROTO;
	}
	memcpy(&h->version, buf + 8, 4);
	if (h->version != STREAM_VERSION) {
		snprintf(err, errlen, "stream version %u, this vmm speaks version %u%s", h->version, STREAM_VERSION,
			 h->version < STREAM_VERSION ? " (the stream comes from an older vmm)" : "");
		return -EPROTO;
	}
	memcpy(&len, buf + 12, 4);
	if (len != header_len(1) && len != header_len(2)) {
		snprintf(err, errlen, "bad header length %u", len);
		return -EPROTO;
	}
	ret = read_full(s->fd, buf + 16, len - 16, deadline);
	if (ret) {
		snprintf(err, errlen, "truncated stream header");
		return ret;
	}
	s->bytes_in += len;
	memcpy(&crc, buf + len - 4, 4);
	want = crc32c(0, buf, len - 4);
	if (crc != want) {
		snprintf(err, errlen, "header checksum mismatch (0x%08x, expected 0x%08x)", crc, want);
		return -EBADMSG;
	}
	memcpy(&h->flags, buf + 16, 4);
	memcpy(&h->page_size, buf + 20, 4);
	memcpy(&h->ram_size, buf + 24, 8);
	memcpy(&h->ncpus, buf + 32, 4);
	memcpy(&h->nslots, buf + 36, 4);
	memcpy(h->binding, buf + 40, STREAM_BINDING_LEN);
	if (h->page_size != PAGE_SIZE || h->nslots < 1 || h->nslots > RAM_SLOTS_MAX ||
	    len != header_len(h->nslots)) {
		snprintf(err, errlen, "bad header (page size %u, %u slots)", h->page_size, h->nslots);
		return -EPROTO;
	}
	for (i = 0; i < h->nslots; i++) {
		memcpy(&h->slot[i].gpa, buf + STREAM_HEADER_FIXED + 16 * i, 8);
		memcpy(&h->slot[i].size, buf + STREAM_HEADER_FIXED + 16 * i + 8, 8);
	}
	return 0;
}

uint32_t stream_crc_len(uint32_t type, const void *payload, uint32_t len)
{
	uint32_t count;

	if (type != REC_RAM_PAGES || len < 4)
		return len;
	memcpy(&count, payload, 4);
	return 8 + 8ULL * count < len ? 8 + 8 * count : len;
}

/* The CRC of a record: its first 12 header bytes, then the first @covered bytes of @iov. */
static uint32_t rec_crc(const uint32_t hdr[3], const struct iovec *iov, int iovcnt, uint32_t covered)
{
	uint32_t crc = crc32c(0, hdr, 12);
	int i;

	for (i = 0; i < iovcnt && covered; i++) {
		size_t n = iov[i].iov_len < covered ? iov[i].iov_len : covered;

		crc = crc32c(crc, iov[i].iov_base, n);
		covered -= (uint32_t)n;
	}
	return crc;
}

int stream_write_record(struct stream *s, uint32_t type, const struct iovec *iov, int iovcnt)
{
	struct iovec v[2 + 2 * STREAM_PAGES_MAX];
	uint8_t head[4] = { 0 };
	uint32_t hdr[4], len = 0, got = 0;
	int i, ret;

	if (iovcnt > (int)(sizeof(v) / sizeof(v[0])) - 1)
		return -E2BIG;
	for (i = 0; i < iovcnt; i++) {
		/* The payload's first 4 bytes (RAM_PAGES: the count), wherever the iovecs split them. */
		size_t n = iov[i].iov_len < 4 - got ? iov[i].iov_len : 4 - got;

		memcpy(head + got, iov[i].iov_base, n);
		got += (uint32_t)n;
		len += (uint32_t)iov[i].iov_len;
	}
	if (len > STREAM_MAX_PAYLOAD)
		return -E2BIG;
	hdr[0] = type;
	hdr[1] = len;
	hdr[2] = s->seq_out++;
	hdr[3] = rec_crc(hdr, iov, iovcnt, stream_crc_len(type, head, len));
	v[0] = (struct iovec){ hdr, sizeof(hdr) };
	memcpy(&v[1], iov, sizeof(*iov) * (size_t)iovcnt);
	ret = write_full(s->fd, v, iovcnt + 1);
	if (ret)
		return ret;
	s->bytes_out += sizeof(hdr) + len;
	stream_throttle(s, sizeof(hdr) + len);
	return 0;
}

int stream_write(struct stream *s, uint32_t type, const void *payload, uint32_t len)
{
	struct iovec iov = { (void *)payload, len };

	return stream_write_record(s, type, &iov, len ? 1 : 0);
}

void stream_sanitize(char *dst, size_t cap, const void *src, size_t len)
{
	const unsigned char *p = src;
	size_t i;

	if (!cap)
		return;
	for (i = 0; i < len && i < cap - 1; i++)
		dst[i] = p[i] >= 0x20 && p[i] < 0x7f ? (char)p[i] : '?';
	dst[i] = '\0';
}

bool stream_error_is_link(int err)
{
	switch (-err) {
	case EPIPE: case ECONNRESET: case ECONNABORTED: case ETIMEDOUT: case EHOSTUNREACH: case ENETUNREACH:
	case ENETDOWN: case EHOSTDOWN: case ENOTCONN: case ESHUTDOWN:
		return true;
	}
	return false;
}

const char *stream_rec_name(uint32_t type)
{
	switch (type) {
	case REC_RAM_PAGES: return "RAM_PAGES";
	case REC_MACHINE_STATE: return "MACHINE_STATE";
	case REC_END_ROUND: return "END_ROUND";
	case REC_END: return "END";
	case REC_ACK: return "ACK";
	case REC_ERROR: return "ERROR";
	case REC_DISCARD: return "DISCARD";
	case REC_POSTCOPY_RUN: return "POSTCOPY_RUN";
	case REC_POSTCOPY_DONE: return "POSTCOPY_DONE";
	case REC_ZERO_PAGES: return "ZERO_PAGES";
	case REC_VERIFY: return "VERIFY";
	case REC_MULTIFD_SYNC: return "MULTIFD_SYNC";
	case REC_PAGE_REQUEST: return "PAGE_REQUEST";
	case REC_END_OF_COPY: return "END_OF_COPY";
	case REC_RECV_BITMAP: return "RECV_BITMAP";
	default: return "unknown";
	}
}

bool stream_rec_len_ok(uint32_t type, uint32_t len)
{
	static const struct { uint32_t type, min, max; } sizes[] = {
		{ REC_RAM_PAGES, 8 + 8, STREAM_MAX_PAYLOAD },
		{ REC_MACHINE_STATE, 40, STREAM_MAX_PAYLOAD },	/* an FDT header at least */
		{ REC_END_ROUND, 16, 16 },
		{ REC_END, 0, 0 },
		{ REC_DISCARD, 8 + 16, 8 + 16 * 65536 },
		{ REC_POSTCOPY_RUN, 0, 0 },
		{ REC_POSTCOPY_DONE, 0, 0 },
		{ REC_ZERO_PAGES, 8 + 16, STREAM_MAX_PAYLOAD },
		{ REC_VERIFY, 16 + 8, 16 + 8 * 65536 },
		{ REC_MULTIFD_SYNC, 8, 8 },
		{ REC_ACK, 4, 4 },
		{ REC_ERROR, 0, STREAM_ERROR_MAX },
		{ REC_PAGE_REQUEST, 8 + 8, 8 + 8 * STREAM_PAGES_MAX },
		{ REC_END_OF_COPY, 0, 0 },
		{ REC_RECV_BITMAP, 8 + 8, STREAM_MAX_PAYLOAD },
	};
	size_t i;

	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		if (sizes[i].type == type)
			return len >= sizes[i].min && len <= sizes[i].max;
	return false;
}

int stream_check_ranges(const uint8_t *ranges, uint32_t count, uint64_t npages, uint64_t *first, uint64_t *n)
{
	uint32_t i;

	for (i = 0; i < count; i++) {
		memcpy(first, ranges + 16ULL * i, 8);
		memcpy(n, ranges + 16ULL * i + 8, 8);
		if (!*n || *first >= npages || *n > npages - *first)
			return -EPROTO;
	}
	return 0;
}

/* A record header just read: in sequence, of a known type and a size it can have, fits @cap. */
static int check_rec_header(struct stream *s, const uint32_t hdr[4], struct stream_rec *rec, void *buf,
			    uint32_t cap, char *err, size_t errlen)
{
	rec->type = hdr[0];
	rec->len = hdr[1];
	rec->payload = buf;
	if (hdr[2] != s->seq_in) {
		snprintf(err, errlen, "record out of sequence (%u, expected %u)", hdr[2], s->seq_in);
		return -EPROTO;
	}
	if (!strcmp(stream_rec_name(rec->type), "unknown")) {
		snprintf(err, errlen, "unknown record type %u", rec->type);
		return -EPROTO;
	}
	if (!stream_rec_len_ok(rec->type, rec->len)) {
		snprintf(err, errlen, "%s record of %u bytes: not a size it can have", stream_rec_name(rec->type),
			 rec->len);
		return -EPROTO;
	}
	if (rec->len > cap) {
		snprintf(err, errlen, "%s record of %u bytes, at most %u allowed", stream_rec_name(rec->type),
			 rec->len, cap);
		return -EPROTO;
	}
	return 0;
}

/* A record's checksummed part read (rec->payload, @covered bytes): its checksum, then it counts. */
static int check_rec_payload(struct stream *s, const uint32_t hdr[4], const struct stream_rec *rec,
			     uint32_t covered, char *err, size_t errlen)
{
	uint32_t crc = crc32c(crc32c(0, hdr, 12), rec->payload, covered);

	if (crc != hdr[3]) {
		snprintf(err, errlen, "checksum mismatch in %s record %u (0x%08x, expected 0x%08x)",
			 stream_rec_name(rec->type), hdr[2], hdr[3], crc);
		return -EBADMSG;
	}
	s->seq_in++;
	s->bytes_in += STREAM_REC_HDR + rec->len;
	return 0;
}

int stream_read_head(struct stream *s, struct stream_rec *rec, void *buf, uint32_t cap,
		     char *err, size_t errlen)
{
	uint32_t hdr[4], first;
	struct iovec h = { hdr, sizeof(hdr) };
	ssize_t got;
	int ret;

	/*
	 * The first byte within idle_ms (with whatever of the header came with
	 * it); from then on the whole record within timeout_ms.
	 */
	got = read_iov(s->fd, &h, 1, 1, deadline_in(s->idle_ms));
	s->rec_deadline_ns = deadline_in(s->timeout_ms);
	ret = got < 0 ? (int)got : 0;
	if (!ret && (size_t)got < sizeof(hdr))
		ret = read_full(s->fd, (char *)hdr + got, sizeof(hdr) - (size_t)got, s->rec_deadline_ns);
	if (ret) {
		snprintf(err, errlen, "%s", read_error(ret));
		return ret;
	}
	ret = check_rec_header(s, hdr, rec, buf, cap, err, errlen);
	if (ret)
		return ret;
	/* A RAM_PAGES payload is at least 16 bytes: its count comes first, and says what the CRC covers. */
	first = rec->type == REC_RAM_PAGES ? 8 : rec->len;
	ret = read_full(s->fd, buf, first, s->rec_deadline_ns);
	if (!ret) {
		rec->covered = stream_crc_len(rec->type, buf, rec->len);
		ret = read_full(s->fd, (char *)buf + first, rec->covered - first, s->rec_deadline_ns);
	}
	if (ret) {
		rec_read_error(err, errlen, stream_rec_name(rec->type), ret);
		return ret;
	}
	return check_rec_payload(s, hdr, rec, rec->covered, err, errlen);
}

int stream_read_rest(struct stream *s, const struct stream_rec *rec, struct iovec *iov, int iovcnt,
		     char *err, size_t errlen)
{
	int ret = read_full_iov(s->fd, iov, iovcnt, s->rec_deadline_ns);

	if (ret)
		rec_read_error(err, errlen, stream_rec_name(rec->type), ret);
	return ret;
}

int stream_read_record(struct stream *s, struct stream_rec *rec, void *buf, uint32_t cap,
		       char *err, size_t errlen)
{
	struct iovec rest;
	int ret;

	ret = stream_read_head(s, rec, buf, cap, err, errlen);
	if (ret || rec->covered == rec->len)
		return ret;
	rest = (struct iovec){ (char *)buf + rec->covered, rec->len - rec->covered };
	ret = stream_read_rest(s, rec, &rest, 1, err, errlen);
	if (!ret)
		rec->covered = rec->len;
	return ret;
}

int stream_read_some(struct stream *s, struct stream_rx *rx, struct stream_rec *rec, void *buf, uint32_t cap,
		     char *err, size_t errlen)
{
	for (;;) {
		bool in_hdr = rx->got < STREAM_REC_HDR;
		uint32_t pgot = in_hdr ? 0 : rx->got - STREAM_REC_HDR;
		size_t want = in_hdr ? STREAM_REC_HDR - rx->got : rx->rec.len - pgot;
		char *at = in_hdr ? (char *)rx->hdr + rx->got : (char *)buf + pgot;
		ssize_t n;
		int ret;

		/*
		 * As stream_read_head(): the checksum as soon as the part it covers is
		 * in (a RAM_PAGES record's first 8 bytes say how long that part is),
		 * before the record is returned or its end waited for.  The reads
		 * themselves take all that has come, up to the record's end.
		 */
		if (!in_hdr && !rx->checked) {
			uint32_t first = rx->rec.type == REC_RAM_PAGES ? 8 : rx->rec.len;
			uint32_t covered = pgot < first ? UINT32_MAX : stream_crc_len(rx->rec.type, buf, rx->rec.len);

			if (pgot >= covered) {
				ret = check_rec_payload(s, rx->hdr, &rx->rec, covered, err, errlen);
				if (ret)
					return ret;
				rx->checked = true;
			}
		}
		if (!in_hdr && rx->checked && !want) {
			rx->got = 0;
			rx->checked = false;
			*rec = rx->rec;
			rec->covered = rec->len;
			return 1;
		}
		/* Not O_NONBLOCK on the fd: the same connection is written blocking. */
		n = recv(s->fd, at, want, MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (n <= 0) {
			ret = n < 0 ? -errno : -EPIPE;
			if (in_hdr && !rx->got)
				snprintf(err, errlen, "%s", read_error(ret));
			else
				rec_read_error(err, errlen, in_hdr ? "a" : stream_rec_name(rx->rec.type), ret);
			return ret;
		}
		rx->got += (uint32_t)n;
		if (in_hdr && rx->got == STREAM_REC_HDR) {
			ret = check_rec_header(s, rx->hdr, &rx->rec, buf, cap, err, errlen);
			if (ret)
				return ret;
		}
	}
}
