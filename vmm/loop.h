/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The main thread's event loop: poll(2) over a few fds, one callback each.
 * Everything the user talks to (the terminal, monitor sockets) and every
 * notification from other threads (an eventfd) comes through here, so the
 * monitor and readline run on one thread only.
 */
#ifndef VMM_LOOP_H
#define VMM_LOOP_H

#include <stdbool.h>

#define LOOP_MAX_FDS 64

typedef void loop_fn(void *opaque, int fd, short revents);

struct loop_entry {
	int fd;
	short events;
	loop_fn *fn;
	void *opaque;
};

struct loop {
	struct loop_entry e[LOOP_MAX_FDS];
	int n;
	bool stop;
};

void loop_init(struct loop *loop);

/* Watch @fd for @events (POLLIN...); -ENOSPC when full, -EEXIST if watched. */
int loop_add(struct loop *loop, int fd, short events, loop_fn *fn, void *opaque);

/* Stop watching @fd; safe from inside a callback. */
void loop_del(struct loop *loop, int fd);

/* Run until loop_stop(); 0 or -errno if poll fails. */
int loop_run(struct loop *loop);

/* Make loop_run() return after the current round of callbacks. */
void loop_stop(struct loop *loop);

#endif
