/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * userfaultfd, thinly: open, register guest RAM in MISSING mode, place pages
 * atomically.  Postcopy needs it on the destination: a guest access to a page
 * that has not arrived blocks in the kernel until the fault server places it.
 *
 * Every function returns 0 or -errno; uffd_open() and uffd_check() also say
 * in @why what the user must change when userfaultfd is not available.
 */
#ifndef MIGRATE_UFFD_H
#define MIGRATE_UFFD_H

#include <stdbool.h>
#include <stddef.h>

/* A new userfaultfd (O_CLOEXEC | O_NONBLOCK, API handshake done), or -errno and @why. */
int uffd_open(char *why, size_t len);

/*
 * The same with minor faults on shared memory (UFFD_FEATURE_MINOR_SHMEM):
 * -EOPNOTSUPP and @why if the kernel has none.
 */
int uffd_open_minor(char *why, size_t len);

/*
 * Open and close one (with minor faults on shared memory if @minor): may a
 * postcopy migration start here?  0, or -errno and @why.
 */
int uffd_check(bool minor, char *why, size_t len);

/* The message uffd_open() gives for @err (a negative errno). */
void uffd_explain(int err, char *why, size_t len);

/* Register [addr, addr+len) (page-aligned) for MISSING faults; -EOPNOTSUPP if it cannot place pages. */
int uffd_register(int fd, void *addr, size_t len);
/*
 * Register [addr, addr+len) of a shared mapping for MINOR faults (a uffd from
 * uffd_open_minor()): an access to a page the mapping has not mapped waits,
 * even if the page is in the file, until uffd_continue() maps it.
 */
int uffd_register_minor(int fd, void *addr, size_t len);
/*
 * Register [addr, addr+len) of a shared mapping for both: a page the file
 * lacks faults MISSING, a page it has but the mapping does not show faults
 * MINOR; uffd_continue() resolves both once the page is in the file.
 */
int uffd_register_shared(int fd, void *addr, size_t len);
/* Unregister the range and wake every thread waiting on it. */
int uffd_unregister(int fd, void *addr, size_t len);

/*
 * Place @len bytes from @src at @dst (page-aligned) and wake whoever waits on
 * them.  -EEXIST: a page was there already (harmless for a page that arrives
 * twice; the pages before it are placed).  Partial copies are resumed.
 */
int uffd_copy(int fd, void *dst, const void *src, size_t len);

/* Place zero pages at [dst, dst+len); -EEXIST as uffd_copy(). */
int uffd_zeropage(int fd, void *dst, size_t len);

/*
 * Map the file's pages at [dst, dst+len) (already written through another
 * mapping of the same file) and wake whoever waits on them; -EEXIST as
 * uffd_copy().  No byte is copied.
 */
int uffd_continue(int fd, void *dst, size_t len);

/* Wake the threads waiting on [addr, addr+len). */
int uffd_wake(int fd, void *addr, size_t len);

#endif
