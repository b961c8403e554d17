/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * cmdline.h - splitting the loader's command line into words and parsing
 * key=value arguments.
 *
 * Grammar: IMAGE-NAME [MODE [KEY=VALUE]...], words separated by spaces or
 * tabs.  The image name is dropped; modes decide which keys they accept.
 */
#ifndef GUEST_CMDLINE_H
#define GUEST_CMDLINE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdnoreturn.h>

#define CMDLINE_MAX_WORDS 32

/* Split line into argv (mode first); returns argc, 0 for no arguments. */
int cmdline_split(const char *line, char *argv[CMDLINE_MAX_WORDS]);

/* If word is "key=...", point *value past the '=' and return true. */
bool cmdline_key(const char *word, const char *key, const char **value);

/* Decimal or 0x-prefixed hex; false on junk or overflow. */
bool cmdline_number(const char *s, uint64_t *out);

/* A number with an optional K, M or G suffix (powers of 1024). */
bool cmdline_size(const char *s, uint64_t *out);

/* Print "guest: bad argument 'word'" and exit with GUEST_EXIT_BADARG. */
noreturn void cmdline_bad(const char *word);

#endif
