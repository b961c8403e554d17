// SPDX-License-Identifier: GPL-2.0-or-later
/* Number and word parsing shared by the command line and the monitor. */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/log.h"
#include "vmm/parse.h"

int parse_u64(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	/* strtoull accepts a leading '-' and wraps it: refuse it here. */
	if (!s || !*s || *s == '-' || isspace((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno == ERANGE)
		return -ERANGE;
	if (errno || *end)
		return -EINVAL;
	*out = v;
	return 0;
}

int parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	unsigned shift = 0;

	if (!s || !*s || !isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno == ERANGE)
		return -ERANGE;
	if (errno)
		return -EINVAL;
	switch (toupper((unsigned char)*end)) {
	case '\0': break;
	case 'K': shift = 10; end++; break;
	case 'M': shift = 20; end++; break;
	case 'G': shift = 30; end++; break;
	case 'T': shift = 40; end++; break;
	case 'B': break;
	default: return -EINVAL;
	}
	if (toupper((unsigned char)*end) == 'B' || (shift && toupper((unsigned char)*end) == 'I' &&
						  toupper((unsigned char)end[1]) == 'B'))
		end += toupper((unsigned char)*end) == 'B' ? 1 : 2;
	if (*end)
		return -EINVAL;
	if (shift && v > (~0ULL >> shift))
		return -ERANGE;
	*out = (uint64_t)v << shift;
	return 0;
}

int parse_words(char *line, char **argv, int max)
{
	int n = 0;
	char *p = line;

	while (n < max) {
		while (*p && isspace((unsigned char)*p))
			p++;
		if (!*p)
			break;
		argv[n++] = p;
		while (*p && !isspace((unsigned char)*p))
			p++;
		if (*p)
			*p++ = '\0';
	}
	return n;
}

int parse_usage_error(const char *cmd, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	error(-EINVAL, "%s", msg);
	parse_usage_hint(cmd);
	return -EINVAL;
}

void parse_usage_hint(const char *cmd)
{
	/* Not an error line of its own: scripts count those. */
	log_msg(LOG_INFO, "try 'vmm %s --help'", cmd);
}

int parse_option_error(const char *cmd, int c, char *const argv[])
{
	const char *arg = optind > 0 ? argv[optind - 1] : "?";

	if (c == ':')
		return parse_usage_error(cmd, "option '%s' needs a value", arg);
	/* A short option (maybe in a bundle like -nq) is named by optopt; a long one by its argument. */
	if (optopt)
		return parse_usage_error(cmd, "unknown option '-%c'", optopt);
	return parse_usage_error(cmd, "unknown option '%s'", arg);
}
