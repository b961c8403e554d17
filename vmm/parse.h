/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Parsing of what users type: sizes ("256M", "1G", "4096"), integers
 * ("0x1000", "42"), and the command line's bad usage.  Strict: trailing
 * garbage, overflow and empty strings are errors, never silently zero.
 */
#ifndef VMM_PARSE_H
#define VMM_PARSE_H

#include <stdint.h>

/* Parse an unsigned integer (decimal, 0x hex or 0 octal) into *out; 0 or -EINVAL/-ERANGE. */
int parse_u64(const char *s, uint64_t *out);

/* Parse a size with an optional K/M/G/T suffix (powers of 1024, "B" alone allowed); 0 or -errno. */
int parse_size(const char *s, uint64_t *out);

/* Split @line in place into at most @max words separated by blanks; returns the count. */
int parse_words(char *line, char **argv, int max);

/*
 * Bad usage of `vmm CMD`: one error line, then the hint "try 'vmm CMD
 * --help'" (never the whole usage).  Returns -EINVAL.
 */
int parse_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Just the hint, after an error reported elsewhere. */
void parse_usage_hint(const char *cmd);

/*
 * After getopt_long() returned '?' or ':' (run with opterr = 0 and an option
 * string starting with ':'): name the bad option as parse_usage_error() does.
 */
int parse_option_error(const char *cmd, int c, char *const argv[]);

#endif
