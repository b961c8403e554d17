/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * dirty.h - the memory workload and correctness oracle for live migration.
 *
 * Rewrites a working set of pages at a controlled rate on every CPU and
 * checks each page against a per-page generation number before rewriting
 * it, between writes, and once more at the end, so any page the host lost,
 * corrupted or restored stale is reported by number and address.
 */
#ifndef GUEST_DIRTY_H
#define GUEST_DIRTY_H

/* The "dirty" mode: argv[0] is "dirty", then key=value words.  Returns the
 * exit status (GUEST_EXIT_OK, _FAIL or _NOFIT); exits on a bad argument. */
int dirty_main(int argc, char **argv);

#endif
