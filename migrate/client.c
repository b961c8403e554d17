// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * `vmm migrate`: a monitor client.  It starts the migration with the
 * `migrate` command and then polls `info migrate`, so it shows exactly what
 * a user at the monitor would see; Ctrl-C sends `migrate_cancel`.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "migrate/client.h"
#include "migrate/migration.h"
#include "vmm/log.h"
#include "vmm/monitor.h"
#include "vmm/parse.h"
#include "vmm/strbuf.h"

#define POLL_MS 200

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
	(void)sig;
	interrupted = 1;
}

static void usage(FILE *f)
{
	struct strbuf settings = STRBUF_INIT;

	migration_describe_settings(&settings);
	fprintf(f,
		"usage: vmm migrate [OPTIONS] URI\n"
		"\n"
		"Migrate the VM of a running vmm (started with --monitor PATH) to URI:\n"
		"tcp:HOST:PORT, unix:PATH or file:PATH, where `vmm run --incoming URI` waits\n"
		"(or, for file:, a snapshot is written).  Shows progress; Ctrl-C cancels.\n"
		"\n"
		"options:\n"
		"      --monitor [unix:]PATH  the source's monitor socket (default: $VMM_MONITOR)\n"
		"  -s, --set NAME=VALUE    set a parameter or capability below first (repeatable),\n"
		"                          as migrate_set_parameter / migrate_set_capability would\n"
		"  -p, --postcopy          switch to postcopy (migrate -p): after postcopy-after-rounds\n"
		"                          precopy rounds, or when precopy does not converge\n"
		"  -r, --resume            resume a postcopy migration paused after a failure (migrate -r):\n"
		"                          URI is where the destination listens again (migrate_recover);\n"
		"                          fails (status 1) if it is still paused a second later\n"
		"  -t, --timeout SECONDS   cancel if not completed by then (default: none)\n"
		"  -q, --quiet             no progress line, only the result\n"
		"  -h, --help              this help\n"
		"\n"
		"%s"
		"A setting stays for the vmm's later migrations.\n"
		"\n"
		"exit status: 0 completed, 1 failed or cancelled, 2 bad usage or no monitor.\n",
		settings.buf ? settings.buf : "");
	strbuf_release(&settings);
}

/* The value after "name: " in an `info migrate` reply, or "" if absent. */
static const char *field(const char *reply, const char *name, char *buf, size_t len)
{
	const char *p = reply;
	size_t n = strlen(name);

	buf[0] = '\0';
	while (p && *p) {
		if (!strncmp(p, name, n) && p[n] == ':' && p[n + 1] == ' ') {
			size_t l = strcspn(p + n + 2, "\n");

			snprintf(buf, len, "%.*s", (int)(l < len ? l : len - 1), p + n + 2);
			break;
		}
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return buf;
}

static void progress(const char *reply, bool tty)
{
	char st[32], rounds[32], rem[64], total[32], tp[32], exp[32], xfer[48];

	/* The remaining pages' own words ("the destination lacks them") are info migrate's, not the line's. */
	field(reply, "pages remaining", rem, sizeof(rem));
	rem[strcspn(rem, " ")] = '\0';
	fprintf(stderr, "%sstatus %s, round %s, %s pages left of %s, %s sent, %s", tty ? "\r\033[K" : "",
		field(reply, "Migration status", st, sizeof(st)), field(reply, "rounds", rounds, sizeof(rounds)),
		rem, field(reply, "ram total", total, sizeof(total)), field(reply, "transferred", xfer, sizeof(xfer)),
		field(reply, "throughput", tp, sizeof(tp)));
	/* A forecast only while precopy rounds run: after the switch it no longer applies. */
	if (field(reply, "expected downtime", exp, sizeof(exp))[0])
		fprintf(stderr, ", expected downtime %s", exp);
	fprintf(stderr, "%s", tty ? "" : "\n");
}

/*
 * Poll `info migrate` until the migration ends: 0 completed, 1 failed or
 * cancelled (or the monitor went).  @resume: also 1 once the migration is
 * postcopy-paused for a second (the resume failed; it says why).
 */
static int follow(int fd, struct strbuf *reply, bool quiet, long timeout, bool resume)
{
	struct sigaction sa = { .sa_handler = on_sigint };
	bool tty = isatty(STDERR_FILENO);
	long polls = 0, last_print = -1000, paused = 0;
	int ret, status = 1;
	char st[32];

	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	for (;;) {
		struct timespec ts = { 0, POLL_MS * 1000000L };

		ret = monitor_request(fd, "info migrate", reply);
		if (ret) {
			error(ret < 0 ? ret : -EPIPE, "lost the monitor connection during the migration");
			return 1;
		}
		field(reply->buf, "Migration status", st, sizeof(st));
		if (!strcmp(st, "completed")) {
			if (!quiet && tty)
				fprintf(stderr, "\r\033[K");
			printf("%s", reply->buf);
			status = 0;
			break;
		}
		paused = !strcmp(st, "postcopy-paused") ? paused + 1 : 0;
		if (!strcmp(st, "failed") || !strcmp(st, "cancelled") || (resume && paused * POLL_MS >= 1000)) {
			if (!quiet && tty)
				fprintf(stderr, "\r\033[K");
			printf("%s", reply->buf);
			break;
		}
		/* A progress line: live on a terminal, once a second otherwise. */
		if (!quiet && (tty || polls - last_print >= 1000 / POLL_MS)) {
			progress(reply->buf, tty);
			last_print = polls;
		}
		if (interrupted || (timeout && polls * POLL_MS >= timeout * 1000)) {
			fprintf(stderr, "%svmm migrate: %s, cancelling\n", tty ? "\n" : "",
				interrupted ? "interrupted" : "timed out");
			monitor_request(fd, "migrate_cancel", reply);
			interrupted = 0;
			timeout = 0;
		}
		nanosleep(&ts, NULL);
		polls++;
	}
	return status;
}

/* --set NAME=VALUE: a parameter, or else a capability, as `vmm run --set` takes it; 0 or 1. */
static int set_setting(int fd, const char *set, struct strbuf *cmd, struct strbuf *reply)
{
	const char *eq = strchr(set, '=');
	int ret, capability;

	for (capability = 0; capability < 2; capability++) {
		strbuf_reset(cmd);
		strbuf_printf(cmd, "migrate_set_%s %.*s %s", capability ? "capability" : "parameter",
			      (int)(eq - set), set, eq + 1);
		ret = monitor_request(fd, cmd->buf, reply);
		if (!ret)
			return 0;
		if (ret != 1 || !strstr(reply->buf, "unknown parameter"))
			break;
	}
	fprintf(stderr, "%s", reply->buf ? reply->buf : "monitor connection lost\n");
	return 1;
}

int migrate_client(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "monitor", required_argument, NULL, 'M' },
		{ "set", required_argument, NULL, 's' },
		{ "timeout", required_argument, NULL, 't' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "postcopy", no_argument, NULL, 'p' },
		{ "resume", no_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = getenv("VMM_MONITOR"), *sets[16];
	struct strbuf reply = STRBUF_INIT, cmd = STRBUF_INIT;
	bool quiet = false, postcopy = false, resume = false;
	int nsets = 0, c, fd, status = 1;
	uint64_t secs;
	long timeout = 0;

	optind = 1;
	opterr = 0;
	/* No -m: it is --mem in `vmm run`; the monitor is only --monitor here. */
	while ((c = getopt_long(argc, argv, ":s:t:qprh", longopts, NULL)) != -1) {
		switch (c) {
		case 'M': path = optarg; break;
		case 's':
			if (nsets == 16 || !strchr(optarg, '=') || optarg[0] == '=') {
				parse_usage_error("migrate", "bad --set '%s': NAME=VALUE (at most 16)", optarg);
				return 2;
			}
			sets[nsets++] = optarg;
			break;
		case 't':
			if (parse_u64(optarg, &secs) || secs > 86400 * 365) {
				parse_usage_error("migrate", "bad --timeout '%s': seconds", optarg);
				return 2;
			}
			timeout = (long)secs;
			break;
		case 'q': quiet = true; break;
		case 'p': postcopy = true; break;
		case 'r': resume = true; break;
		case 'h': usage(stdout); return 0;
		default:
			if (c == '?' && optopt == 'm')
				parse_usage_error("migrate", "unknown option '-m' (-m is --mem in 'vmm run'; "
						  "the monitor socket is --monitor PATH)");
			else
				parse_option_error("migrate", c, argv);
			return 2;
		}
	}
	if (optind != argc - 1) {
		parse_usage_error("migrate", optind == argc ? "no URI given" : "one URI only");
		return 2;
	}
	if (!path) {
		parse_usage_error("migrate", "no monitor socket: give --monitor PATH or set VMM_MONITOR");
		return 2;
	}
	fd = monitor_connect(path);
	if (fd < 0)
		return 2;
	for (c = 0; c < nsets; c++)
		if (set_setting(fd, sets[c], &cmd, &reply))
			goto out;
	strbuf_reset(&cmd);
	strbuf_printf(&cmd, "migrate %s%s%s", postcopy ? "-p " : "", resume ? "-r " : "", argv[optind]);
	if (monitor_request(fd, cmd.buf, &reply)) {
		fprintf(stderr, "%s", reply.buf ? reply.buf : "monitor connection lost\n");
		goto out;
	}
	status = follow(fd, &reply, quiet, timeout, resume);
out:
	close(fd);
	strbuf_release(&reply);
	strbuf_release(&cmd);
	return status;
}
