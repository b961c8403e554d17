// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * A poll(2) loop.  Entries removed by a callback are marked (fd = -1) and
 * compacted after the round, so callbacks may add and remove freely.
 */
#include <errno.h>
#include <poll.h>
#include <string.h>

#include "vmm/loop.h"

void loop_init(struct loop *loop)
{
	memset(loop, 0, sizeof(*loop));
}

int loop_add(struct loop *loop, int fd, short events, loop_fn *fn, void *opaque)
{
	int i;

	for (i = 0; i < loop->n; i++)
		if (loop->e[i].fd == fd)
			return -EEXIST;
	if (loop->n == LOOP_MAX_FDS)
		return -ENOSPC;
	loop->e[loop->n++] = (struct loop_entry){ fd, events, fn, opaque };
	return 0;
}

void loop_del(struct loop *loop, int fd)
{
	int i;

	for (i = 0; i < loop->n; i++)
		if (loop->e[i].fd == fd)
			loop->e[i].fd = -1;
}

static void loop_compact(struct loop *loop)
{
	int i, j = 0;

	for (i = 0; i < loop->n; i++)
		if (loop->e[i].fd >= 0)
			loop->e[j++] = loop->e[i];
	loop->n = j;
}

int loop_run(struct loop *loop)
{
	struct pollfd pfd[LOOP_MAX_FDS];
	struct loop_entry snap[LOOP_MAX_FDS];

	loop->stop = false;
	while (!loop->stop) {
		int i, n = loop->n, ret;

		for (i = 0; i < n; i++) {
			snap[i] = loop->e[i];
			pfd[i] = (struct pollfd){ .fd = snap[i].fd, .events = snap[i].events };
		}
		ret = poll(pfd, (nfds_t)n, -1);
		if (ret < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		for (i = 0; i < n && !loop->stop; i++) {
			int j;

			if (!pfd[i].revents)
				continue;
			/* Skip an entry a previous callback of this round removed. */
			for (j = 0; j < loop->n; j++)
				if (loop->e[j].fd == snap[i].fd && loop->e[j].fn == snap[i].fn)
					break;
			if (j == loop->n)
				continue;
			snap[i].fn(snap[i].opaque, snap[i].fd, pfd[i].revents);
		}
		loop_compact(loop);
	}
	return 0;
}

void loop_stop(struct loop *loop)
{
	loop->stop = true;
}
