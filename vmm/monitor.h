/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The monitor: a line-oriented command language (help, info, x, stop, cont,
 * quit, ...) executed on the main thread, reachable from the terminal (see
 * console.h) and from unix sockets.
 *
 * Socket protocol: the server sends the prompt "(vmm) " on connect and after
 * every reply; a client sends one command per line.  Reply lines that start
 * with "error: " report a failed command.  `quit` closes the connection.
 */
#ifndef VMM_MONITOR_H
#define VMM_MONITOR_H

#include <stdbool.h>

#include "vmm/loop.h"
#include "vmm/strbuf.h"

#define MONITOR_PROMPT		"(vmm) "
#define MONITOR_MAX_CLIENTS	8
#define MONITOR_LINE_MAX	4096
#define MONITOR_PATH_MAX	108	/* sizeof(sockaddr_un.sun_path) */

struct vm;
struct monitor;

/* A command: append the reply to @out; 0, or -errno after monitor_error(). */
typedef int monitor_cmd_fn(struct monitor *mon, int argc, char **argv, struct strbuf *out);

/* The candidates for one word being completed (monitor_complete_add() filters by what was typed). */
struct monitor_completion {
	const char *text;	/* the word so far */
	char **word;		/* the candidates, malloc'd */
	int n, cap;
};

/*
 * Completion of a command's arguments: add the candidates for word @argc,
 * after the @argc words @argv (argv[0] is the command; for an `info`
 * topic, argv[1] is the topic).
 */
typedef void monitor_complete_fn(struct monitor *mon, int argc, char **argv, struct monitor_completion *c);

struct monitor_cmd {
	const char *name;	/* "cont|c": QEMU's aliases after a bar, as in its hmp-commands.hx */
	const char *args;	/* usage, e.g. "ADDR [LEN]" */
	const char *help;	/* one line */
	monitor_cmd_fn *fn;
	monitor_complete_fn *complete;	/* its arguments' candidates, or NULL */
};

struct monitor_client {
	int fd;
	char buf[MONITOR_LINE_MAX];
	unsigned len;
};

struct monitor {
	struct vm *vm;
	struct loop *loop;
	const struct monitor_cmd *tables[4];
	int ntables;
	const struct monitor_cmd *info_tables[4];	/* `info TOPIC` handlers */
	int ninfo;
	int listen_fd;
	char *path;
	unsigned int mode;		/* of the socket file: 0600 unless asked */
	struct monitor_client clients[MONITOR_MAX_CLIENTS];
};

/* Set up the monitor with the built-in commands for @vm. */
void monitor_init(struct monitor *mon, struct vm *vm, struct loop *loop);

/* Add a NULL-name-terminated table of commands (e.g. migration's); 0 or -ENOSPC. */
int monitor_add_commands(struct monitor *mon, const struct monitor_cmd *table);

/* Add a table of `info` topics (name = topic; called with argv[0] = "info"); 0 or -ENOSPC. */
int monitor_add_info(struct monitor *mon, const struct monitor_cmd *table);

/*
 * The one parser of monitor addresses, for --monitor of `run` and `migrate`
 * and for `vmm monitor`: "[unix:]PATH[,mode=OCTAL]" (QEMU's unix: prefix is
 * optional).  Fills @path (@len bytes) and, if @mode is not NULL, *mode
 * (0600 unless given; a mode is refused where @mode is NULL).  0, or
 * -EINVAL after one error line.
 */
int monitor_parse_address(const char *addr, char *path, size_t len, unsigned *mode);

/*
 * Listen on the unix socket @spec, "[unix:]PATH[,mode=OCTAL]" (replacing a stale
 * socket nobody listens on): mode 0600 unless given, whatever the umask, and
 * only peers of this user, root (or, with a group mode, this group) served.
 * 0 or -errno.
 */
int monitor_listen(struct monitor *mon, const char *spec);

/* Execute one command line, appending the reply to @out; 0 or -errno. */
int monitor_execute(struct monitor *mon, const char *line, struct strbuf *out);

/* Append "error: <msg>\n" to @out and return @err. */
int monitor_error(struct strbuf *out, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/*
 * Completion candidates for readline: the @state-th match (malloc'd) of
 * @text, the word after @before (the line up to it), or NULL after the last.
 * Command names first, then each command's arguments (its complete fn).
 */
char *monitor_complete(struct monitor *mon, const char *before, const char *text, int state);

/* For complete fns: add @word if it starts with the text typed. */
void monitor_complete_add(struct monitor_completion *c, const char *word);

/* For complete fns: the file names that complete the text after its first @skip bytes ("file:"). */
void monitor_complete_files(struct monitor_completion *c, size_t skip);

/* Close the sockets and remove the socket file. */
void monitor_destroy(struct monitor *mon);

/* Connect to the monitor socket @addr ("[unix:]PATH") and read its first prompt; an fd or -errno. */
int monitor_connect(const char *addr);

/* Send @cmd and read its reply into @reply: 0, 1 if it reports an error, 2 if the server closed, -errno. */
int monitor_request(int fd, const char *cmd, struct strbuf *reply);

/*
 * `vmm monitor [unix:]PATH [COMMAND...]`: connect to a running vmm; run the
 * commands (or an interactive prompt if none) and print the replies.
 * Returns the process exit status: 0, 1 if a command failed, 2 if the
 * connection failed.
 */
int monitor_client(const char *addr, int ncmds, char **cmds);

#endif
