// SPDX-License-Identifier: GPL-2.0-or-later
/* The stream fuzz targets' feeder (feed.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "migrate/crc32c.h"
#include "migrate/stream.h"
#include "tests/fuzz/feed.h"
#include "vmm/log.h"
#include "vmm/ram.h"

void feed_open(int sv[2])
{
	int size = 1 << 20;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		abort();
	/* As much room as the kernel allows (wmem_max): more of a large input fits at once. */
	setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
	setsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	if (fcntl(sv[1], F_SETFL, O_NONBLOCK) < 0)
		abort();
}

size_t feed_write(int fd, const uint8_t *data, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = send(fd, data + done, len - done, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		done += (size_t)n;
	}
	return done;
}

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

void feed_fix(uint8_t *data, size_t len, bool header, bool fix_seq)
{
	size_t off = 0;
	uint32_t seq = 0, crc;

	if (header) {
		uint32_t hlen;

		if (len < 16)
			return;
		hlen = get32(data + 12);
		/* The two lengths a header can have (one or two slots); any other is refused first. */
		if ((hlen != STREAM_HEADER_FIXED + 16 + 4 && hlen != STREAM_HEADER_FIXED + 32 + 4) || hlen > len)
			return;
		crc = crc32c(0, data, hlen - 4);
		memcpy(data + hlen - 4, &crc, 4);
		off = hlen;
	}
	while (len - off >= STREAM_REC_HDR) {
		uint8_t *r = data + off;
		uint32_t plen = get32(r + 4);

		if (fix_seq)
			memcpy(r + 8, &seq, 4);
		if (plen > len - off - STREAM_REC_HDR)
			return;
		crc = crc32c(crc32c(0, r, 12), r + STREAM_REC_HDR, stream_crc_len(get32(r), r + STREAM_REC_HDR, plen));
		memcpy(r + 12, &crc, 4);
		off += STREAM_REC_HDR + plen;
		seq++;
	}
}

void feed_ram_init(struct ram *ram, uint64_t size)
{
	log_level = LOG_QUIET;
	if (ram_create(ram, size))
		abort();
}

bool feed_page0_clean(const struct ram *ram)
{
	static const uint8_t zero[PAGE_SIZE];

	return !memcmp(ram_gpa_to_hva(ram, 0, PAGE_SIZE), zero, PAGE_SIZE);
}
