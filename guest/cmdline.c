// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * cmdline.c - words and numbers from the multiboot command line.
 *
 * The loader passes "IMAGE-NAME ARGS..." (QEMU joins the kernel file name
 * and -append with a space, and vmm does the same), so the first word is
 * skipped.  Words are copied into a private buffer so the original line
 * stays intact for the info mode to print.  Every failure funnels through
 * cmdline_bad, so a host test sees one message format and one exit status
 * for any argument the guest does not understand.
 */
#include "cmdline.h"
#include "guest.h"
#include "layout.h"
#include "serial.h"

static char cmdline_words[BOOT_CMDLINE_MAX];

static bool cmdline_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

int cmdline_split(const char *line, char *argv[CMDLINE_MAX_WORDS])
{
	char *out = cmdline_words;
	int argc = -1;	/* the image name is word -1 */

	for (;;) {
		char *word = out;

		while (cmdline_space(*line))
			line++;
		if (!*line)
			return argc < 0 ? 0 : argc;
		while (*line && !cmdline_space(*line))
			*out++ = *line++;
		*out++ = '\0';
		if (argc == CMDLINE_MAX_WORDS)
			cmdline_bad(word);
		if (argc >= 0)
			argv[argc] = word;
		argc++;
	}
}

bool cmdline_key(const char *word, const char *key, const char **value)
{
	while (*key && *word == *key)
		word++, key++;
	if (*key || *word != '=')
		return false;
	*value = word + 1;
	return true;
}

static bool cmdline_digits(const char **s, uint64_t *out)
{
	unsigned base = 10, n = 0;
	uint64_t v = 0;

	if ((*s)[0] == '0' && ((*s)[1] == 'x' || (*s)[1] == 'X')) {
		base = 16;
		*s += 2;
	}
	for (;; (*s)++, n++) {
		char c = **s;
		unsigned d;

		if (c >= '0' && c <= '9')
			d = (unsigned)(c - '0');
		else if (base == 16 && c >= 'a' && c <= 'f')
			d = (unsigned)(c - 'a' + 10);
		else if (base == 16 && c >= 'A' && c <= 'F')
			d = (unsigned)(c - 'A' + 10);
		else
			break;
		if (__builtin_mul_overflow(v, base, &v) ||
		    __builtin_add_overflow(v, d, &v))
			return false;
	}
	*out = v;
	return n > 0;
}

bool cmdline_number(const char *s, uint64_t *out)
{
	return cmdline_digits(&s, out) && !*s;
}

bool cmdline_size(const char *s, uint64_t *out)
{
	unsigned shift = 0;

	if (!cmdline_digits(&s, out))
		return false;
	switch (*s) {
	case '\0':
		return true;
	case 'k': case 'K':
		shift = 10;
		break;
	case 'm': case 'M':
		shift = 20;
		break;
	case 'g': case 'G':
		shift = 30;
		break;
	default:
		return false;
	}
	if (s[1] || *out > (UINT64_MAX >> shift))
		return false;
	*out <<= shift;
	return true;
}

noreturn void cmdline_bad(const char *word)
{
	serial_printf("guest: bad argument '%s'\n", word);
	guest_exit(GUEST_EXIT_BADARG);
}
