// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Migration status, parameters, figures and monitor commands.  The monitor
 * runs on the main thread and never blocks on the migration: `migrate`
 * starts a thread and returns, `info migrate` reads a snapshot under the
 * lock, `migrate_cancel` sets a flag and shuts the connection down so that
 * a thread blocked in a write or a read wakes up at once.
 */
#include <errno.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "migrate/channel.h"
#include "migrate/faultsrv.h"
#include "migrate/incoming.h"
#include "migrate/migration.h"
#include "migrate/outgoing.h"
#include "migrate/stream.h"
#include "migrate/tls.h"
#include "migrate/uri.h"
#include "vmm/log.h"
#include "vmm/monitor.h"
#include "vmm/parse.h"
#include "vmm/vm.h"

#define DEFAULT_DOWNTIME_MS 300
/*
 * Long enough for a destination comparing a large guest's pages under TCG,
 * or a source stopping vCPUs on a busy machine; short enough that a dead
 * or hostile peer does not hold a stopped guest for long.
 */
#define DEFAULT_PEER_TIMEOUT_MS 10000

const char *migration_status_name(enum migration_status s)
{
	switch (s) {
	case MIGRATION_STATUS_NONE: return "none";
	case MIGRATION_STATUS_SETUP: return "setup";
	case MIGRATION_STATUS_ACTIVE: return "active";
	case MIGRATION_STATUS_COMPLETING: return "completing";
	case MIGRATION_STATUS_POSTCOPY: return "postcopy-active";
	case MIGRATION_STATUS_POSTCOPY_PAUSED: return "postcopy-paused";
	case MIGRATION_STATUS_POSTCOPY_RECOVER: return "postcopy-recover";
	case MIGRATION_STATUS_COMPLETED: return "completed";
	case MIGRATION_STATUS_FAILED: return "failed";
	case MIGRATION_STATUS_CANCELLED: return "cancelled";
	}
	return "unknown";
}

/* After the switch, while it goes on: the guest runs on the destination. */
static bool migration_postcopy_switched(enum migration_status s)
{
	return s == MIGRATION_STATUS_POSTCOPY || s == MIGRATION_STATUS_POSTCOPY_PAUSED ||
	       s == MIGRATION_STATUS_POSTCOPY_RECOVER;
}

static bool migration_running(enum migration_status s)
{
	return s == MIGRATION_STATUS_SETUP || s == MIGRATION_STATUS_ACTIVE || s == MIGRATION_STATUS_COMPLETING ||
	       migration_postcopy_switched(s);
}

const char *postcopy_state_name(enum postcopy_state s)
{
	static const char *const names[] = { "none", "advise", "discard", "listen", "running", "paused", "end" };

	return (unsigned int)s < sizeof(names) / sizeof(names[0]) ? names[s] : "unknown";
}

static void migration_default_params(struct migration_params *p)
{
	memset(p, 0, sizeof(*p));
	p->downtime_limit_ms = DEFAULT_DOWNTIME_MS;
	p->postcopy_after_rounds = 2;
	p->postcopy_background = true;
	p->postcopy_window = 8;
	/* QEMU's defaults. */
	p->cpu_throttle_initial = 20;
	p->cpu_throttle_increment = 10;
	p->max_cpu_throttle = 99;
	p->throttle_trigger_threshold = 50;
	p->peer_timeout_ms = DEFAULT_PEER_TIMEOUT_MS;
	p->multifd_channels = 2;
}

struct migration *migration_new(struct vm *vm)
{
	struct migration *m = calloc(1, sizeof(*m));
	int i;

	if (!m)
		return NULL;
	m->vm = vm;
	m->listen_fd = -1;
	m->uffd = -1;
	for (i = 0; i < MIGRATION_CHANNELS_MAX; i++)
		channel_init(&m->channels[i], (enum channel_role)i);
	pthread_mutex_init(&m->lock, NULL);
	pthread_cond_init(&m->recover_cond, NULL);
	migration_default_params(&m->params);
	return m;
}

struct channel *migration_channel(struct migration *m, enum channel_role role)
{
	struct channel *c = &m->channels[role];

	pthread_mutex_lock(&m->lock);
	channel_close(c);
	channel_init(c, role);
	c->peer_timeout_ms = (int)m->params.peer_timeout_ms;
	c->tls = m->tls;
	c->tls_hostname = m->tls_hostname;
	c->tls_binding = m->tls_binding;
	if (m->nchannels <= (int)role)
		m->nchannels = (int)role + 1;
	pthread_mutex_unlock(&m->lock);
	return c;
}

void migration_close_channels(struct migration *m)
{
	int i;

	pthread_mutex_lock(&m->lock);
	for (i = 0; i < MIGRATION_CHANNELS_MAX; i++)
		channel_close(&m->channels[i]);
	pthread_mutex_unlock(&m->lock);
}

uint64_t migration_channels_bytes(const struct migration *m)
{
	uint64_t bytes = 0;

	for (int i = 0; i < MIGRATION_CHANNELS_MAX; i++)
		bytes += channel_bytes(&m->channels[i]);
	return bytes;
}

void migration_get_params(struct migration *m, struct migration_params *p)
{
	pthread_mutex_lock(&m->lock);
	*p = m->params;
	pthread_mutex_unlock(&m->lock);
}

void migration_set_postcopy(struct migration *m, enum postcopy_state s)
{
	pthread_mutex_lock(&m->lock);
	m->postcopy = s;
	pthread_mutex_unlock(&m->lock);
}

void migration_set_status(struct migration *m, enum migration_status status)
{
	pthread_mutex_lock(&m->lock);
	m->status = status;
	pthread_mutex_unlock(&m->lock);
}

void migration_set_error(struct migration *m, enum migration_status status, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&m->lock);
	if (!m->error[0]) {
		va_start(ap, fmt);
		vsnprintf(m->error, sizeof(m->error), fmt, ap);
		va_end(ap);
	}
	m->status = status;
	pthread_mutex_unlock(&m->lock);
}

bool migration_cancelled(struct migration *m)
{
	return __atomic_load_n(&m->cancel, __ATOMIC_ACQUIRE);
}

static void migration_join(struct migration *m)
{
	if (m->thread_started) {
		pthread_join(m->thread, NULL);
		m->thread_started = false;
	}
}

static int migration_spawn(struct migration *m, void *(*fn)(void *))
{
	int ret;

	/* The side's state lives as long as its thread runs; the thread frees it. */
	if (fn == outgoing_thread)
		m->out = calloc(1, sizeof(*m->out));
	else
		m->in = calloc(1, sizeof(*m->in));
	if (fn == outgoing_thread ? !m->out : !m->in)
		return -ENOMEM;

	/* The connections of a migration before (ping-pong) are closed: their roles and flags go too. */
	for (int i = 0; i < MIGRATION_CHANNELS_MAX; i++) {
		channel_close(&m->channels[i]);
		channel_init(&m->channels[i], (enum channel_role)i);
	}
	m->nchannels = 0;
	m->cancel = false;
	m->pause_asked = false;
	m->recover_uri[0] = '\0';
	m->start_postcopy = false;
	m->postcopy = POSTCOPY_NONE;
	m->error[0] = '\0';
	memset(&m->stats, 0, sizeof(m->stats));
	m->stats.start_ns = stream_now_ns();
	m->status = MIGRATION_STATUS_SETUP;
	ret = -pthread_create(&m->thread, NULL, fn, m);
	if (ret) {
		m->status = MIGRATION_STATUS_FAILED;
		return ret;
	}
	m->thread_started = true;
	return 0;
}

/*
 * TLS for the migration about to start (@server: the destination): the
 * credentials loaded again (the files may have changed), or none.  0, or
 * -errno with one line in @err.
 */
static int tls_prepare(struct migration *m, bool server, const struct uri *u, char *err, size_t len)
{
	struct migration_params p;

	migration_get_params(m, &p);
	tls_creds_free(m->tls);
	m->tls = NULL;
	memset(m->tls_binding, 0, sizeof(m->tls_binding));
	snprintf(m->tls_hostname, sizeof(m->tls_hostname), "%s", p.tls_hostname);
	if (!p.tls_creds[0])
		return 0;
	if (u->kind == URI_FILE) {
		snprintf(err, len, "tls-creds is set, but a file: snapshot is written and read in plaintext (TLS "
			 "protects connections): 'migrate_set_parameter tls-creds \"\"' to use it anyway");
		return -EINVAL;
	}
	return tls_creds_load(&m->tls, p.tls_creds, server, err, len);
}

int migration_start_incoming(struct migration *m, const char *uri)
{
	char err[512];
	struct uri u;
	int ret = uri_parse(uri, &u, err, sizeof(err));

	if (!ret)
		ret = tls_prepare(m, true, &u, err, sizeof(err));
	if (ret)
		return error(ret, "%s", err);
	m->incoming = true;
	snprintf(m->uri, sizeof(m->uri), "%s", uri);
	ret = migration_spawn(m, incoming_thread);
	if (ret)
		return error_errno(ret, "cannot start the migration thread");
	return 0;
}

int migration_start_outgoing(struct migration *m, const char *uri, bool postcopy, struct strbuf *out)
{
	enum vm_state vs = vm_get_state(m->vm, NULL, NULL, 0);
	char err[512];
	struct uri u;
	int ret;

	pthread_mutex_lock(&m->lock);
	ret = migration_running(m->status) ? -EBUSY : 0;
	postcopy = postcopy || m->params.postcopy;
	pthread_mutex_unlock(&m->lock);
	if (ret)
		return monitor_error(out, ret, "%s migration is in progress", m->incoming ? "an incoming" : "a");
	if (vs != VM_STATE_RUNNING && vs != VM_STATE_PAUSED)
		return monitor_error(out, -EINVAL, "the VM is %s: nothing to migrate", vm_state_name(vs));
	ret = uri_parse(uri, &u, err, sizeof(err));
	if (ret)
		return monitor_error(out, ret, "%s", err);
	/* Before the thread creates the file: a refused snapshot leaves nothing behind. */
	if (postcopy && !uri_has_return_path(&u))
		return monitor_error(out, -EINVAL, "postcopy needs a return path (tcp: or unix:), a file has none: "
				     "'migrate_set_capability postcopy off' first");
	pthread_mutex_lock(&m->lock);
	ret = m->params.multifd && !uri_has_return_path(&u) ? -EINVAL : 0;
	pthread_mutex_unlock(&m->lock);
	if (ret)
		return monitor_error(out, ret, "multifd needs connections (tcp: or unix:), a file is one stream: "
				     "'migrate_set_capability multifd off' first");
	/* A VM that arrived here may leave again: ping-pong. */
	m->incoming = false;
	migration_join(m);
	ret = tls_prepare(m, false, &u, err, sizeof(err));
	if (ret)
		return monitor_error(out, ret, "%s", err);
	snprintf(m->uri, sizeof(m->uri), "%s", uri);
	m->postcopy_this = postcopy;
	ret = migration_spawn(m, outgoing_thread);
	if (ret)
		return monitor_error(out, ret, "cannot start the migration thread");
	return 0;
}

void migration_cancel(struct migration *m)
{
	pthread_mutex_lock(&m->lock);
	if (migration_running(m->status)) {
		__atomic_store_n(&m->cancel, true, __ATOMIC_RELEASE);
		/* Wake a thread blocked on a connection, or waiting for one; it owns closing them. */
		for (int i = 0; i < MIGRATION_CHANNELS_MAX; i++)
			channel_shutdown(&m->channels[i]);
		if (m->listen_fd >= 0)
			shutdown(m->listen_fd, SHUT_RDWR);
		/* The destination's thread waits on the fault server: wake it too. */
		if (m->fs && m->fs->ctl_fd >= 0)
			shutdown(m->fs->ctl_fd, SHUT_RDWR);
		pthread_cond_broadcast(&m->recover_cond);
	}
	pthread_mutex_unlock(&m->lock);
}

int migration_pause_wait(struct migration *m, const char *why, uint64_t detect_ms, const char *auto_uri,
			 int auto_ms, char *uri, size_t len)
{
	uint64_t now = stream_now_ns(), until = now + (uint64_t)auto_ms * 1000000ULL;
	struct timespec ts;
	int ret = 0;

	pthread_mutex_lock(&m->lock);
	if (m->status != MIGRATION_STATUS_POSTCOPY_PAUSED && m->status != MIGRATION_STATUS_POSTCOPY_RECOVER) {
		m->stats.pauses++;
		m->stats.pause_start_ns = now;
		m->stats.detect_ms = detect_ms;
	}
	m->status = MIGRATION_STATUS_POSTCOPY_PAUSED;
	m->postcopy = POSTCOPY_PAUSED;
	m->pause_asked = false;
	if (why)
		snprintf(m->error, sizeof(m->error), "%s", why);
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += auto_ms / 1000;
	ts.tv_nsec += (long)(auto_ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	for (;;) {
		if (migration_cancelled(m)) {
			ret = -ECANCELED;
			break;
		}
		if (m->recover_uri[0]) {
			snprintf(uri, len, "%s", m->recover_uri);
			m->recover_uri[0] = '\0';
			break;
		}
		if (auto_uri && stream_now_ns() >= until) {
			snprintf(uri, len, "%s", auto_uri);
			ret = 1;
			break;
		}
		if (auto_uri)
			pthread_cond_timedwait(&m->recover_cond, &m->lock, &ts);
		else
			pthread_cond_wait(&m->recover_cond, &m->lock);
	}
	if (ret >= 0)
		m->status = MIGRATION_STATUS_POSTCOPY_RECOVER;
	pthread_mutex_unlock(&m->lock);
	return ret;
}

void migration_recovered(struct migration *m)
{
	pthread_mutex_lock(&m->lock);
	if (m->stats.pause_start_ns)
		m->stats.paused_ms += (stream_now_ns() - m->stats.pause_start_ns) / 1000000;
	m->stats.pause_start_ns = 0;
	m->stats.recoveries++;
	m->status = MIGRATION_STATUS_POSTCOPY;
	m->postcopy = POSTCOPY_RUNNING;
	m->error[0] = '\0';
	pthread_mutex_unlock(&m->lock);
}

void migration_free(struct migration *m)
{
	if (!m)
		return;
	migration_cancel(m);
	migration_join(m);
	/*
	 * Closing the userfaultfd wakes vCPUs blocked on pages that will never
	 * come (the faults then resolve as zero pages): only now, when the VM
	 * is being torn down, so that no guest code sees them.
	 */
	if (m->uffd >= 0) {
		close(m->uffd);
		m->uffd = -1;
	}
	if (m->fs) {
		faultsrv_destroy(m->fs);
		free(m->fs);
		m->fs = NULL;
	}
	pthread_cond_destroy(&m->recover_cond);
	pthread_mutex_destroy(&m->lock);
	tls_creds_free(m->tls);
	free(m);
}

void migration_format_faults(const struct faultsrv_shared *sh, struct strbuf *out)
{
	uint64_t faults = __atomic_load_n(&sh->faults, __ATOMIC_RELAXED);
	int i;

	strbuf_printf(out, "postcopy pages received: %llu of %llu (%llu had at the switch)\n",
		      (unsigned long long)sh->received, (unsigned long long)sh->npages, (unsigned long long)sh->had);
	strbuf_printf(out, "postcopy faults: %llu\n", (unsigned long long)faults);
	strbuf_printf(out, "pages requested: %llu (%llu requests)\n", (unsigned long long)sh->requested,
		      (unsigned long long)sh->requests);
	strbuf_printf(out, "pages placed: %llu in reply, %llu pushed, %llu zero, %llu duplicates dropped (by %s)\n",
		      (unsigned long long)sh->placed_requested, (unsigned long long)sh->placed_pushed,
		      (unsigned long long)sh->zero_placed, (unsigned long long)sh->duplicates,
		      sh->placed_by_continue ? "UFFDIO_CONTINUE" : "UFFDIO_COPY");
	if (sh->lat.count) {
		strbuf_printf(out, "fault latency: p50 %llu us, p90 %llu us, p99 %llu us, max %llu us (%llu faults)\n",
			      (unsigned long long)faultsrv_latency_percentile(sh, 50),
			      (unsigned long long)faultsrv_latency_percentile(sh, 90),
			      (unsigned long long)faultsrv_latency_percentile(sh, 99),
			      (unsigned long long)(sh->lat.max_ns / 1000), (unsigned long long)sh->lat.count);
		strbuf_printf(out, "fault latency histogram:");
		for (i = 0; i < FAULTSRV_LAT_BUCKETS; i++)
			if (sh->lat.bucket[i])
				strbuf_printf(out, " <%lluus:%llu", 2ULL << i, (unsigned long long)sh->lat.bucket[i]);
		strbuf_printf(out, "\n");
	}
	strbuf_printf(out, "vcpu blocked time: %llu ms\n", (unsigned long long)(sh->blocked_ns / 1000000));
}

/* On a postcopy destination, the fault server's part: bytes, and (verify on) the pages it compared as they came. */
static void faultsrv_figures(struct migration *m, struct migration_stats *st)
{
	const struct faultsrv_shared *sh = m->incoming && m->fs ? m->fs->shared : NULL;

	if (!sh)
		return;
	/* The connections went to the fault server with their counts: it counts on. */
	st->bytes = __atomic_load_n(&sh->bytes_in, __ATOMIC_RELAXED) + __atomic_load_n(&sh->bytes_out, __ATOMIC_RELAXED);
	st->verify_pages += __atomic_load_n(&sh->verified, __ATOMIC_RELAXED);
	st->verify_bad += __atomic_load_n(&sh->verify_bad, __ATOMIC_RELAXED);
}

static uint64_t ms_since(uint64_t ns)
{
	return (stream_now_ns() - ns) / 1000000;
}

/* What info migrate shows, taken at once under the lock. */
struct snapshot {
	struct migration_stats st;
	enum migration_status status;
	enum postcopy_state pstate;
	char error[sizeof(((struct migration *)0)->error)];
	const struct faultsrv_shared *sh;	/* destination, postcopy: the fault server's figures */
	uint64_t total;
};

static void snapshot_take(struct migration *m, struct snapshot *snap)
{
	pthread_mutex_lock(&m->lock);
	snap->st = m->stats;
	snap->status = m->status;
	snap->pstate = m->postcopy;
	memcpy(snap->error, m->error, sizeof(snap->error));
	snap->sh = m->incoming && m->fs ? m->fs->shared : NULL;
	faultsrv_figures(m, &snap->st);
	pthread_mutex_unlock(&m->lock);
	snap->total = migration_running(snap->status) ? ms_since(snap->st.start_ns) : snap->st.total_ms;
}

/*
 * One "name: value" line of info migrate.  After a failure or a cancel
 * (@terse) a zero says nothing: only the figures that are not zero follow
 * the reason.
 */
__attribute__((format(printf, 4, 5)))
static void figure(struct strbuf *out, bool terse, uint64_t v, const char *fmt, ...)
{
	va_list ap;
	char line[256];

	if (terse && !v)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	strbuf_printf(out, "%s", line);
}

#define ULL(v) ((unsigned long long)(v))

/*
 * The downtime, source stop to destination running, is the source's figure:
 * it ends at ACK(RUNNING), sent once the state is loaded.  The destination
 * cannot read the source's clock; what it shows is its own part of that
 * time, under its own name ("load and start").
 */
static void format_downtime(struct migration *m, const struct snapshot *snap, struct strbuf *out)
{
	const struct migration_stats *st = &snap->st;
	bool known = snap->status == MIGRATION_STATUS_COMPLETED || migration_postcopy_switched(snap->status);

	if (!m->incoming && snap->status == MIGRATION_STATUS_ACTIVE)
		strbuf_printf(out, "expected downtime: %llu ms\n", ULL(st->expected_downtime_ms));
	if (!known)
		return;
	if (m->incoming)
		strbuf_printf(out, "load and start: %llu ms (the machine state's arrival to the vCPUs' start here)\n",
			      ULL(st->load_start_ms));
	else
		strbuf_printf(out, "downtime: %llu ms (this side's stop to the destination's run)\n",
			      ULL(st->downtime_ms));
}

static void format_precopy(struct migration *m, const struct snapshot *snap, bool terse, struct strbuf *out)
{
	const struct migration_stats *st = &snap->st;

	figure(out, terse, st->rounds, "rounds: %llu\n", ULL(st->rounds));
	if (m->incoming)
		figure(out, terse, st->wait_ms, "waited for the source: %llu ms (not in the total)\n", ULL(st->wait_ms));
	figure(out, terse, snap->total, "total time: %llu ms\n", ULL(snap->total));
	figure(out, terse, st->setup_ms, "setup time: %llu ms\n", ULL(st->setup_ms));
	if (!terse)
		format_downtime(m, snap, out);
	figure(out, terse, st->bytes, "transferred: %llu bytes\n", ULL(st->bytes));
	figure(out, terse, st->multifd_channels, "multifd: %llu connections, %llu bytes\n",
	       ULL(st->multifd_channels), ULL(st->multifd_bytes));
	figure(out, terse, st->pages_sent, "ram total: %llu pages\n", ULL(st->pages_total));
	figure(out, terse, st->pages_sent, "pages %s: %llu\n", m->incoming ? "received" : "sent",
	       ULL(st->pages_sent));
	figure(out, terse, st->zero_pages | st->zero_skipped, "zero pages: %llu sent as entries, %llu never sent\n",
	       ULL(st->zero_pages), ULL(st->zero_skipped));
	if (!m->incoming) {
		figure(out, terse, st->pages_sent, "pages remaining: %llu (the destination lacks them)\n",
		       ULL(st->pages_remaining));
		figure(out, terse, st->dirty_rate, "dirty rate: %llu pages/s\n", ULL(st->dirty_rate));
		if (st->throttle_steps)
			strbuf_printf(out, "cpu throttle percentage: %llu (auto-converge, raised %llu times)\n",
				      ULL(st->cpu_throttle_pct), ULL(st->throttle_steps));
		if (st->forced_expected_ms)
			strbuf_printf(out, "downtime limit not met: max-rounds stopped the guest with %llu ms "
				      "expected\n", ULL(st->forced_expected_ms));
		figure(out, terse, st->throughput, "throughput: %.2f MB/s\n", (double)st->throughput / 1e6);
		if (st->precopy_ms)
			strbuf_printf(out, "precopy: %llu bytes in %llu ms (%.2f MB/s); this thread's CPU %llu ms, "
				      "dirty-log syncs %llu ms\n", ULL(st->precopy_bytes), ULL(st->precopy_ms),
				      (double)st->precopy_bytes / 1e3 / (double)st->precopy_ms,
				      ULL(st->precopy_cpu_ns / 1000000), ULL(st->precopy_sync_ns / 1000000));
	} else if (st->precopy_cpu_ns) {
		strbuf_printf(out, "precopy: the receiving thread's CPU %llu ms\n", ULL(st->precopy_cpu_ns / 1000000));
	}
	figure(out, terse, st->state_bytes, "state size: %llu bytes\n", ULL(st->state_bytes));
}

/* The time paused: every pause, the one going on included. */
static uint64_t paused_ms(const struct migration_stats *st)
{
	return st->paused_ms + (st->pause_start_ns ? ms_since(st->pause_start_ns) : 0);
}

static void format_recovery(struct migration *m, const struct migration_stats *st, struct strbuf *out)
{
	strbuf_printf(out, "postcopy recovery: paused %llu times, recovered %llu, paused %llu ms in all; "
		      "the last failure noticed %llu ms after the peer was last heard\n", ULL(st->pauses),
		      ULL(st->recoveries), ULL(paused_ms(st)), ULL(st->detect_ms));
	if (!m->incoming)
		strbuf_printf(out, "sent again after a recovery: %llu pages, %llu bytes (on their way when it broke)\n",
			      ULL(st->recovery_pages), ULL(st->recovery_bytes));
	else
		strbuf_printf(out, "fault server restarts: %llu\n", ULL(st->faultsrv_restarts));
}

static void format_postcopy(struct migration *m, const struct snapshot *snap, struct strbuf *out)
{
	const struct migration_stats *st = &snap->st;
	uint64_t pc = migration_postcopy_switched(snap->status) ? ms_since(st->switch_ns) : st->postcopy_ms;

	strbuf_printf(out, "postcopy time: %llu ms\n", ULL(pc));
	if (st->pauses || st->faultsrv_restarts)
		format_recovery(m, st, out);
	if (m->incoming) {
		strbuf_printf(out, "switchover here: drop missing pages and register %llu us\n",
			      ULL(st->switch_drop_us));
		if (snap->sh && snap->sh->cpu_ns)
			strbuf_printf(out, "fault server CPU: %llu ms\n", ULL(snap->sh->cpu_ns / 1000000));
		return;
	}
	if (st->push_cpu_ns || st->rp_cpu_ns)
		strbuf_printf(out, "CPU after the switch: push %llu ms, return path %llu ms\n",
			      ULL(st->push_cpu_ns / 1000000), ULL(st->rp_cpu_ns / 1000000));
	strbuf_printf(out, "switchover: sync %llu us, send %llu us, then the destination's load\n",
		      ULL(st->switch_sync_us), ULL(st->switch_send_us));
	strbuf_printf(out, "pages requested: %llu (%llu requests; %llu of them already pushed, sent again)\n",
		      ULL(st->pages_requested), ULL(st->requests), ULL(st->pages_resent));
	strbuf_printf(out, "pages pushed: %llu\n", ULL(st->pages_pushed));
	strbuf_printf(out, "pages discarded: %llu\n", ULL(st->pages_discarded));
	strbuf_printf(out, "pages had at switch: %llu\n", ULL(st->had_at_switch));
	strbuf_printf(out, "zero pages after switch: %llu\n", ULL(st->zero_after_switch));
	strbuf_printf(out, "bytes after switch: %llu\n", ULL(st->bytes_after_switch));
	strbuf_printf(out, "non-zero pages missing at switch: %llu\n", ULL(st->nonzero_at_switch));
}

/* TLS on this migration: "PSK" or "x509" (NULL: plaintext), and its connections by who carries their records. */
static const char *tls_summary(struct migration *m, int *kernel, int *relay)
{
	const char *kind;
	int i;

	*kernel = *relay = 0;
	pthread_mutex_lock(&m->lock);
	kind = m->tls ? tls_creds_kind(m->tls) : NULL;
	for (i = 0; kind && i < m->nchannels; i++)
		if (m->channels[i].tls_on)
			++*(m->channels[i].tls_kernel ? kernel : relay);
	pthread_mutex_unlock(&m->lock);
	return kind;
}

void migration_format(struct migration *m, struct strbuf *out)
{
	const char *tls;
	int tk, tr;
	struct snapshot snap;
	const struct migration_stats *st = &snap.st;
	bool terse;

	snapshot_take(m, &snap);
	strbuf_printf(out, "Migration status: %s\n", migration_status_name(snap.status));
	if (snap.status == MIGRATION_STATUS_NONE)
		return;
	/* After a failure the reason comes first: it is what the reader came for. */
	terse = snap.status == MIGRATION_STATUS_FAILED || snap.status == MIGRATION_STATUS_CANCELLED;
	if (terse && snap.error[0])
		strbuf_printf(out, "failure reason: %s\n", snap.error);
	strbuf_printf(out, "direction: %s\n", m->incoming ? "incoming" : "outgoing");
	if (snap.pstate != POSTCOPY_NONE)
		strbuf_printf(out, "postcopy state: %s\n", postcopy_state_name(snap.pstate));
	strbuf_printf(out, "uri: %s\n", m->uri);
	tls = tls_summary(m, &tk, &tr);
	if (tls)
		strbuf_printf(out, "tls: %s; %d connections by kernel TLS, %d by the user-space relay\n", tls, tk, tr);
	format_precopy(m, &snap, terse, out);
	if (st->switch_ns)
		format_postcopy(m, &snap, out);
	if (m->incoming && m->fs && m->fs->shared)
		migration_format_faults(m->fs->shared, out);
	if (st->verify_pages || st->verify_bad)
		strbuf_printf(out, "verify: %llu pages %s in %llu ms%s, %llu differ\n", ULL(st->verify_pages),
			      m->incoming ? "compared" : "digested", ULL(st->verify_ms),
			      m->incoming && st->switch_ns ? " (at the switch) and as they came" : "",
			      ULL(st->verify_bad));
	if (!terse && snap.error[0])
		strbuf_printf(out, "failure reason: %s\n", snap.error);
}

#undef ULL

/* ,"fault_latency_samples_us":[...]: the first faults' latencies, in order. */
static void format_samples(const struct faultsrv_shared *sh, struct strbuf *out)
{
	uint32_t *v = malloc(FAULTSRV_LAT_SAMPLES * sizeof(*v));
	size_t i, n;

	if (!v)
		return;
	n = faultsrv_latency_samples(sh, v, FAULTSRV_LAT_SAMPLES);
	strbuf_printf(out, ",\"fault_latency_samples_us\":[");
	for (i = 0; i < n; i++)
		strbuf_printf(out, "%s%u", i ? "," : "", v[i]);
	strbuf_printf(out, "]");
	free(v);
}

#define U(name, v) strbuf_printf(out, ",\"%s\":%llu", name, (unsigned long long)(v))
/* The destination's fault server figures, as JSON members. */
static void format_json_faults(const struct faultsrv_shared *sh, bool samples, struct strbuf *out)
{
	int i;

	U("faults", sh->faults);
	U("pages_requested", sh->requested);
	U("requests", sh->requests);
	U("pages_received", sh->received);
	U("placed_requested", sh->placed_requested);
	U("placed_pushed", sh->placed_pushed);
	U("duplicates", sh->duplicates);
	strbuf_printf(out, ",\"placement\":\"%s\"", sh->placed_by_continue ? "continue" : "copy");
	U("fault_latency_p50_us", sh->lat.count ? faultsrv_latency_percentile(sh, 50) : 0);
	U("fault_latency_p90_us", sh->lat.count ? faultsrv_latency_percentile(sh, 90) : 0);
	U("fault_latency_p99_us", sh->lat.count ? faultsrv_latency_percentile(sh, 99) : 0);
	U("fault_latency_max_us", sh->lat.max_ns / 1000);
	U("vcpu_blocked_ms", sh->blocked_ns / 1000000);
	U("faultsrv_cpu_ms", sh->cpu_ns / 1000000);
	strbuf_printf(out, ",\"fault_latency_histogram_us\":{");
	for (i = 0; i < FAULTSRV_LAT_BUCKETS; i++)
		strbuf_printf(out, "%s\"%llu\":%llu", i ? "," : "", 2ULL << i,
			      (unsigned long long)sh->lat.bucket[i]);
	strbuf_printf(out, "}");
	if (samples)
		format_samples(sh, out);
}

#undef U

/* The postcopy figures, as JSON members (the source's own after the switch). */
static void format_json_postcopy(struct migration *m, const struct migration_stats *st, struct strbuf *out)
{
#define U(name, v) strbuf_printf(out, ",\"%s\":%llu", name, (unsigned long long)(v))
	U("postcopy", st->switch_ns != 0);
	U("postcopy_ms", st->postcopy_ms);
	U("pauses", st->pauses);
	U("recoveries", st->recoveries);
	U("paused_ms", paused_ms(st));
	U("detect_ms", st->detect_ms);
	if (m->incoming)
		U("faultsrv_restarts", st->faultsrv_restarts);
	else {
		U("recovery_pages", st->recovery_pages);
		U("recovery_bytes", st->recovery_bytes);
	}
	if (m->incoming) {
		if (st->switch_ns)
			U("switchover_drop_us", st->switch_drop_us);
		return;
	}
	U("switchover_downtime_ms", st->switch_downtime_ms);
	if (st->switch_ns) {
		U("switchover_sync_us", st->switch_sync_us);
		U("switchover_send_us", st->switch_send_us);
	}
	U("pages_requested", st->pages_requested);
	U("requests", st->requests);
	U("pages_resent", st->pages_resent);
	U("pages_pushed", st->pages_pushed);
	U("pages_discarded", st->pages_discarded);
	U("pages_had_at_switch", st->had_at_switch);
	U("zero_after_switch", st->zero_after_switch);
	U("bytes_after_switch", st->bytes_after_switch);
	U("nonzero_at_switch", st->nonzero_at_switch);
	U("urgent_bytes", st->urgent_bytes);
	U("push_cpu_ms", st->push_cpu_ns / 1000000);
	U("return_path_cpu_ms", st->rp_cpu_ns / 1000000);
#undef U
}

/* The same figures as one JSON object, for scripts and the benchmark. */
void migration_format_json(struct migration *m, struct strbuf *out, bool samples)
{
	struct snapshot snap;
	struct migration_stats st;
	enum migration_status status;
	enum postcopy_state pstate;
	const struct faultsrv_shared *sh;
	char *error = snap.error, *c;
	const char *tls;
	uint64_t total;
	int tk, tr;

	snapshot_take(m, &snap);
	st = snap.st;
	status = snap.status;
	pstate = snap.pstate;
	sh = snap.sh;
	total = snap.total;
	for (c = error; *c; c++)
		if (*c == '"' || *c == '\\' || (unsigned char)*c < 0x20)
			*c = ' ';
#define U(name, v) strbuf_printf(out, ",\"%s\":%llu", name, (unsigned long long)(v))
	strbuf_printf(out, "{\"status\":\"%s\",\"direction\":\"%s\",\"postcopy_state\":\"%s\"",
		      migration_status_name(status), m->incoming ? "incoming" : "outgoing", postcopy_state_name(pstate));
	U("rounds", st.rounds);
	U("total_ms", total);
	U("setup_ms", st.setup_ms);
	/* Each name means one thing: a figure one side cannot know is not there, rather than 0. */
	if (m->incoming) {
		U("wait_ms", st.wait_ms);
		U("load_start_ms", st.load_start_ms);
		if (st.started_wall_us)
			U("vcpus_started_wall_us", st.started_wall_us);
	} else {
		if (status == MIGRATION_STATUS_ACTIVE)
			U("expected_downtime_ms", st.expected_downtime_ms);
		U("downtime_ms", st.downtime_ms);
		if (st.stopped_wall_us)
			U("vcpus_stopped_wall_us", st.stopped_wall_us);
		U("pages_remaining", st.pages_remaining);
		U("cpu_throttle_percentage", st.cpu_throttle_pct);
		U("throttle_steps", st.throttle_steps);
		U("forced_expected_downtime_ms", st.forced_expected_ms);
	}
	tls = tls_summary(m, &tk, &tr);
	strbuf_printf(out, ",\"tls\":\"%s\"", tls ? tls : "off");
	U("tls_kernel_connections", tk);
	U("tls_relay_connections", tr);
	U("bytes", st.bytes);
	U("multifd_channels", st.multifd_channels);
	U("multifd_bytes", st.multifd_bytes);
	U("pages_total", st.pages_total);
	U("pages_sent", st.pages_sent);
	U("zero_pages", st.zero_pages);
	U("zero_skipped", st.zero_skipped);
	U("dirty_rate", st.dirty_rate);
	U("throughput", st.throughput);
	U("precopy_ms", st.precopy_ms);
	U("precopy_bytes", st.precopy_bytes);
	U("precopy_cpu_ms", st.precopy_cpu_ns / 1000000);
	if (!m->incoming)
		U("precopy_sync_ms", st.precopy_sync_ns / 1000000);
	U("state_bytes", st.state_bytes);
	format_json_postcopy(m, &st, out);
	U("verify_pages", st.verify_pages);
	U("verify_ms", st.verify_ms);
	U("verify_bad", st.verify_bad);
	if (sh)
		format_json_faults(sh, samples, out);
#undef U
	strbuf_printf(out, ",\"error\":\"%s\"}\n", error);
}

/* ---- monitor commands ---- */

static struct migration *the_migration;

/*
 * migrate_recover on a destination whose postcopy migration completed: its
 * source may still wait for the END_OF_COPY the link lost.  A thread
 * answers it (incoming_answer_thread()); the completed migration's figures
 * are kept.
 */
static int answer_start(struct migration *m, const char *uri, struct strbuf *out)
{
	int ret;

	migration_join(m);	/* the incoming thread, at its end once completed */
	pthread_mutex_lock(&m->lock);
	m->cancel = false;
	snprintf(m->recover_uri, sizeof(m->recover_uri), "%s", uri);
	m->status = MIGRATION_STATUS_POSTCOPY_RECOVER;
	ret = -pthread_create(&m->thread, NULL, incoming_answer_thread, m);
	if (ret)
		m->status = MIGRATION_STATUS_COMPLETED;
	m->thread_started = !ret;
	pthread_mutex_unlock(&m->lock);
	if (ret)
		return monitor_error(out, ret, "cannot start the migration thread");
	strbuf_printf(out, "the migration completed here; listening on %s to tell a source still waiting for "
		      "END_OF_COPY that every page arrived (migrate_resume there)\n", uri);
	return 0;
}

/*
 * migrate_recover (destination) and migrate_resume (source): the URI to
 * listen on or connect to again, for a migration paused after the switch.
 */
static int recover_ask(struct migration *m, bool incoming, const char *uri, struct strbuf *out)
{
	const char *cmd = incoming ? "migrate_recover" : "migrate_resume";
	enum migration_status s;
	char err[256];
	struct uri u;
	int ret = 0;

	if (uri_parse(uri, &u, err, sizeof(err)))
		return monitor_error(out, -EINVAL, "%s", err);
	if (!uri_has_return_path(&u))
		return monitor_error(out, -EINVAL, "%s needs a connection (tcp: or unix:), not a file", cmd);
	pthread_mutex_lock(&m->lock);
	s = m->status;
	if (incoming && m->incoming && s == MIGRATION_STATUS_COMPLETED && m->postcopy == POSTCOPY_END) {
		pthread_mutex_unlock(&m->lock);
		return answer_start(m, uri, out);
	}
	if (m->incoming != incoming)
		ret = monitor_error(out, -EINVAL, "%s is for the %s; this vmm is the %s (use %s)", cmd,
				    incoming ? "destination" : "source", m->incoming ? "destination" : "source",
				    m->incoming ? "migrate_recover URI" : "migrate_resume URI, or migrate -r URI");
	else if (s != MIGRATION_STATUS_POSTCOPY_PAUSED && s != MIGRATION_STATUS_POSTCOPY_RECOVER)
		ret = monitor_error(out, -EINVAL, "%s: no postcopy migration is paused here (status: %s)", cmd,
				    migration_status_name(s));
	else {
		snprintf(m->recover_uri, sizeof(m->recover_uri), "%s", uri);
		pthread_cond_broadcast(&m->recover_cond);
	}
	pthread_mutex_unlock(&m->lock);
	if (!ret)
		strbuf_printf(out, incoming ? "listening on %s for the source to resume (migrate_resume there)\n" :
			      "resuming the postcopy migration through %s; 'info migrate' shows progress\n", uri);
	return ret;
}

static int cmd_migrate(struct monitor *mon, int argc, char **argv, struct strbuf *out)
{
	const char *uri = NULL;
	bool postcopy = false, resume = false;
	int i;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-d"))
			continue;	/* detached is the only mode: the command returns at once */
		if (!strcmp(argv[i], "-p")) {
			postcopy = true;	/* this migration only: the capability stays as it is */
			continue;
		}
		if (!strcmp(argv[i], "-r")) {
			resume = true;		/* QEMU's: resume a paused postcopy migration */
			continue;
		}
		if (argv[i][0] == '-')
			return monitor_error(out, -EINVAL, "unknown option '%s'", argv[i]);
		if (uri)
			return monitor_error(out, -EINVAL, "usage: migrate [-d] [-p] [-r] URI");
		uri = argv[i];
	}
	if (!uri)
		return monitor_error(out, -EINVAL, "usage: migrate [-d] [-p] [-r] URI");
	if (resume)
		return recover_ask(the_migration, false, uri, out);
	if (migration_start_outgoing(the_migration, uri, postcopy, out))
		return -EINVAL;
	strbuf_printf(out, "migration to %s started; 'info migrate' shows progress\n", uri);
	return 0;
}

static int cmd_migrate_resume(struct monitor *mon, int argc, char **argv, struct strbuf *out)
{
	if (argc != 2)
		return monitor_error(out, -EINVAL, "usage: migrate_resume URI");
	return recover_ask(the_migration, false, argv[1], out);
}

static int cmd_migrate_recover(struct monitor *mon, int argc, char **argv, struct strbuf *out)
{
	if (argc != 2)
		return monitor_error(out, -EINVAL, "usage: migrate_recover URI");
	return recover_ask(the_migration, true, argv[1], out);
}

/* migrate_pause: break the connections of a postcopy migration on purpose; it pauses as if they had failed. */
static int cmd_migrate_pause(struct monitor *mon, int argc, char **argv, struct strbuf *out)
{
	struct migration *m = the_migration;
	int ret = 0;

	pthread_mutex_lock(&m->lock);
	if (m->status != MIGRATION_STATUS_POSTCOPY) {
		ret = monitor_error(out, -EINVAL, "migrate_pause: no postcopy migration is running here (status: %s)",
				    migration_status_name(m->status));
	} else {
		m->pause_asked = true;
		for (int i = 0; i < MIGRATION_CHANNELS_MAX; i++)
			channel_shutdown(&m->channels[i]);
		/* The destination's connections are the fault server's: it is asked to drop them. */
		if (m->incoming && m->fs)
			faultsrv_pause(m->fs);
	}
	pthread_mutex_unlock(&m->lock);
	return ret;
}

static int cmd_migrate_cancel(struct monitor *mon, int argc, char **argv, struct strbuf *out)
{
	struct migration *m = the_migration;
	enum migration_status s;

	pthread_mutex_lock(&m->lock);
	s = m->status;
	pthread_mutex_unlock(&m->lock);
	if (!migration_running(s))
		return monitor_error(out, -EINVAL, "no migration in progress (status: %s)", migration_status_name(s));
	if (s == MIGRATION_STATUS_POSTCOPY)
		return monitor_error(out, -EBUSY, "too late to cancel: after the postcopy switch the guest runs on the "
				     "destination (migrate_pause breaks the connections; a paused migration can be cancelled)");
	/*
	 * Outgoing: the VM goes on here (after the switch: it stays paused, the
	 * migration failed).  Incoming: nothing has run here; vmm ends
	 * (VM_STATUS_INCOMING); after the switch the guest stays stopped.
	 */
	migration_cancel(m);
	return 0;
}

/*
 * The settings: parameters (migrate_set_parameter) and capabilities
 * (migrate_set_capability, always on/off), by name (QEMU's where it has the
 * same one, and its name as an alias where ours differs), where they live,
 * and whether the value is a size, a switch or a number.
 */
enum param_kind { PARAM_NUM, PARAM_SIZE, PARAM_BOOL, PARAM_STR };

static const struct setting {
	const char *name, *alias;
	bool capability;
	size_t off;
	enum param_kind kind;
	const char *unit;
} settings[] = {
#define P(name, field, kind, unit) { name, NULL, false, offsetof(struct migration_params, field), kind, unit }
#define C(name, alias, field, help) { name, alias, true, offsetof(struct migration_params, field), PARAM_BOOL, help }
	P("downtime-limit", downtime_limit_ms, PARAM_NUM, "ms"),
	P("max-bandwidth", max_bandwidth, PARAM_SIZE, "bytes/s, 0 = unlimited"),
	P("max-rounds", max_rounds, PARAM_NUM, "0 = no limit"),
	P("postcopy-after-rounds", postcopy_after_rounds, PARAM_NUM, "0 = pure postcopy"),
	P("postcopy-background", postcopy_background, PARAM_BOOL, "on/off"),
	P("postcopy-window", postcopy_window, PARAM_NUM, "pages each side"),
	P("max-postcopy-bandwidth", max_postcopy_bandwidth, PARAM_SIZE, "bytes/s for background pages, 0 = unlimited"),
	P("peer-timeout", peer_timeout_ms, PARAM_NUM, "ms a peer may be silent mid-record or owe an answer"),
	P("tls-creds", tls_creds, PARAM_STR, "a directory: keys.psk, or ca-cert.pem and this side's "
	  "{server,client}-{cert,key}.pem; \"\" = plaintext"),
	P("tls-hostname", tls_hostname, PARAM_STR, "source: the destination's certificate names it; \"\" = the URI's host"),
	P("x-lose-ack-running", x_lose_ack_running, PARAM_BOOL,
	  "test hook, destination: do not send ACK(RUNNING) at the postcopy switch, as if it were lost"),
	P("x-lose-end-of-copy", x_lose_end_of_copy, PARAM_BOOL,
	  "test hook, destination: do not send END_OF_COPY once every page is here, as if it were lost"),
	P("x-drop-page", x_drop_page, PARAM_BOOL,
	  "test hook: precopy leaves out of its last round the highest dirty page that changed since sent"),
	P("x-corrupt-page", x_corrupt_page, PARAM_BOOL,
	  "test hook: flip a byte of the first data page sent after the last stop"),
	C("postcopy", "postcopy-ram", postcopy, "switch to postcopy instead of stopping for the rest"),
	P("cpu-throttle-initial", cpu_throttle_initial, PARAM_NUM, "percent, auto-converge's first step"),
	P("cpu-throttle-increment", cpu_throttle_increment, PARAM_NUM, "percent, auto-converge's later steps"),
	P("max-cpu-throttle", max_cpu_throttle, PARAM_NUM, "percent, auto-converge's highest"),
	P("throttle-trigger-threshold", throttle_trigger_threshold, PARAM_NUM,
	  "percent: a round that dirtied more than this share of what it sent outruns the link"),
	C("verify", NULL, verify, "digest every page at the last stop; the destination compares before it runs"),
	C("auto-converge", NULL, auto_converge,
	  "throttle the vCPUs step by step while the guest dirties pages faster than the link sends them"),
	C("multifd", NULL, multifd, "send precopy's pages on multifd-channels connections, a thread each"),
	P("multifd-channels", multifd_channels, PARAM_NUM, "connections for precopy's pages with multifd, 1 to 8"),
#undef P
#undef C
};

/* The throttle's percentages: 1 to 99 (QEMU's range). */
static bool is_percent(const struct setting *p)
{
	return p->off == offsetof(struct migration_params, cpu_throttle_initial) ||
	       p->off == offsetof(struct migration_params, cpu_throttle_increment) ||
	       p->off == offsetof(struct migration_params, max_cpu_throttle) ||
	       p->off == offsetof(struct migration_params, throttle_trigger_threshold);
}

static int parse_bool(const char *v, bool *out)
{
	if (!strcmp(v, "on") || !strcmp(v, "1") || !strcmp(v, "true"))
		*out = true;
	else if (!strcmp(v, "off") || !strcmp(v, "0") || !strcmp(v, "false"))
		*out = false;
	else
		return -EINVAL;
	return 0;
}

static const struct setting *setting_find(bool capability, const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(settings) / sizeof(settings[0]); i++)
		if (settings[i].capability == capability &&
		    (!strcmp(settings[i].name, name) || (settings[i].alias && !strcmp(settings[i].alias, name))))
			return &settings[i];
	return NULL;
}

int migration_set(struct migration *m, bool capability, const char *name, const char *value, struct strbuf *out)
{
	const char *what = capability ? "capability" : "parameter";
	const struct setting *p = setting_find(capability, name);
	uint64_t v = 0;
	bool b = false;
	int ret;

	if (!p)
		return monitor_error(out, -EINVAL, "unknown %s '%s' ('info migrate_%s' lists them)", what, name,
				     capability ? "capabilities" : "parameters");
	if (p->kind == PARAM_STR) {
		/* "" (the monitor's quotes, or nothing at all) clears it. */
		if (!strcmp(value, "\"\"") || !strcmp(value, "''"))
			value = "";
		if (strlen(value) >= sizeof(m->params.tls_creds))
			return monitor_error(out, -ENAMETOOLONG, "%s: too long (at most %zu bytes)", p->name,
					     sizeof(m->params.tls_creds) - 1);
		pthread_mutex_lock(&m->lock);
		snprintf((char *)&m->params + p->off, sizeof(m->params.tls_creds), "%s", value);
		pthread_mutex_unlock(&m->lock);
		return 0;
	}
	/* Bandwidths take a size suffix (bytes/s): "100M" is 100 MiB/s. */
	ret = p->kind == PARAM_BOOL ? parse_bool(value, &b) :
	      p->kind == PARAM_SIZE ? parse_size(value, &v) : parse_u64(value, &v);
	if (!ret && p->off == offsetof(struct migration_params, peer_timeout_ms) && (v < 100 || v > 3600000))
		ret = -ERANGE;
	if (!ret && p->off == offsetof(struct migration_params, multifd_channels) &&
	    (v < 1 || v > MIGRATION_MULTIFD_MAX))
		ret = -ECHRNG;
	if (!ret && is_percent(p) &&
	    (v < 1 || v > (p->off == offsetof(struct migration_params, throttle_trigger_threshold) ? 100U : 99U)))
		ret = -EDOM;
	if (ret)
		return monitor_error(out, -EINVAL, "bad value '%s' for %s (%s)", value, p->name,
				     p->kind == PARAM_BOOL ? "on or off" :
				     ret == -ERANGE ? "100 to 3600000 ms" : ret == -ECHRNG ? "1 to 8" :
				     ret == -EDOM ? "a percentage, 1 to 99 (the threshold: to 100)" : p->unit);
	pthread_mutex_lock(&m->lock);
	if (p->kind == PARAM_BOOL)
		*(bool *)((char *)&m->params + p->off) = b;
	else
		*(uint64_t *)((char *)&m->params + p->off) = v;
	pthread_mutex_unlock(&m->lock);
	return 0;
}

/* migrate_set_parameter and migrate_set_capability: NAME VALUE. */
static int set_setting(int argc, char **argv, struct strbuf *out, bool capability)
{
	if (argc != 3)
		return monitor_error(out, -EINVAL, "usage: %s NAME %s", argv[0], capability ? "on|off" : "VALUE");
	return migration_set(the_migration, capability, argv[1], argv[2], out);
}

static int cmd_set_parameter(struct monitor *mon, int argc, char **argv, struct strbuf *out)
{
	return set_setting(argc, argv, out, false);
}

static int cmd_set_capability(struct monitor *mon, int argc, char **argv, struct strbuf *out)
{
	return set_setting(argc, argv, out, true);
}

/* info migrate_parameters and info migrate_capabilities. */
static int list_settings(struct strbuf *out, bool capability)
{
	struct migration_params p;
	size_t i;

	migration_get_params(the_migration, &p);
	for (i = 0; i < sizeof(settings) / sizeof(settings[0]); i++) {
		const char *at = (const char *)&p + settings[i].off;

		if (settings[i].capability != capability)
			continue;
		if (settings[i].kind == PARAM_BOOL)
			strbuf_printf(out, capability ? "%s: %s (%s)\n" : "%s: %s\n", settings[i].name,
				      *(const bool *)at ? "on" : "off", settings[i].unit);
		else if (settings[i].kind == PARAM_STR)
			strbuf_printf(out, "%s: \"%s\"\n", settings[i].name, at);
		else
			strbuf_printf(out, "%s: %llu (%s)\n", settings[i].name,
				      (unsigned long long)*(const uint64_t *)at, settings[i].unit);
	}
	return 0;
}

void migration_describe_settings(struct strbuf *out)
{
	struct migration_params p;
	char setting[64];
	size_t i;
	int capability;

	migration_default_params(&p);
	for (capability = 0; capability < 2; capability++) {
		strbuf_printf(out, capability ? "capabilities (migrate_set_capability NAME on|off):\n" :
			      "parameters (migrate_set_parameter NAME VALUE), with their defaults:\n");
		for (i = 0; i < sizeof(settings) / sizeof(settings[0]); i++) {
			const struct setting *s = &settings[i];
			const char *at = (const char *)&p + s->off;

			if (s->capability != capability)
				continue;
			if (s->kind == PARAM_BOOL)
				snprintf(setting, sizeof(setting), "%s=%s", s->name, *(const bool *)at ? "on" : "off");
			else if (s->kind == PARAM_STR)
				snprintf(setting, sizeof(setting), "%s=\"%.32s\"", s->name, at);
			else
				snprintf(setting, sizeof(setting), "%s=%llu", s->name,
					 (unsigned long long)*(const uint64_t *)at);
			strbuf_printf(out, "  %-28s %s%s%s%s\n", setting, s->unit, s->alias ? " (QEMU's name: " : "",
				      s->alias ? s->alias : "", s->alias ? ")" : "");
		}
	}
}

static int cmd_start_postcopy(struct monitor *mon, int argc, char **argv, struct strbuf *out)
{
	struct migration *m = the_migration;
	int ret = 0;

	pthread_mutex_lock(&m->lock);
	if (m->incoming || !migration_running(m->status))
		ret = monitor_error(out, -EINVAL, "no outgoing migration in progress");
	else if (!m->postcopy_this)
		ret = monitor_error(out, -EINVAL, "this migration cannot switch: it started without postcopy "
				    "(migrate -p URI, or migrate_set_capability postcopy on before migrate)");
	else if (m->status == MIGRATION_STATUS_POSTCOPY)
		ret = monitor_error(out, -EALREADY, "already in postcopy");
	else
		__atomic_store_n(&m->start_postcopy, true, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&m->lock);
	return ret;
}

static int info_migrate(struct monitor *mon, int argc, char **argv, struct strbuf *out)
{
	bool json = false, samples = false;
	int i;

	for (i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--json") || !strcmp(argv[i], "-j"))
			json = true;
		else if (!strcmp(argv[i], "--samples"))
			samples = true;
		else
			return monitor_error(out, -EINVAL, "usage: info migrate [--json [--samples]]");
	}
	if (samples && !json)
		return monitor_error(out, -EINVAL, "--samples goes with --json");
	if (json)
		migration_format_json(the_migration, out, samples);
	else
		migration_format(the_migration, out);
	return 0;
}

static int info_migrate_parameters(struct monitor *mon, int argc, char **argv, struct strbuf *out)
{
	return list_settings(out, false);
}

static int info_migrate_capabilities(struct monitor *mon, int argc, char **argv, struct strbuf *out)
{
	return list_settings(out, true);
}

/* ---- completion of the arguments ---- */

/* migrate: its flags, the URI schemes, and the paths of file: and unix:. */
static void complete_migrate(struct monitor *mon, int argc, char **argv, struct monitor_completion *c)
{
	static const char *const words[] = { "-d", "-p", "-r", "tcp:", "unix:", "file:" };
	size_t i;

	if (!strncmp(c->text, "file:", 5) || !strncmp(c->text, "unix:", 5)) {
		monitor_complete_files(c, 5);
		return;
	}
	for (i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		monitor_complete_add(c, words[i]);
}

/* NAME (and QEMU's alias), then on/off for a switch. */
static void complete_setting(int argc, char **argv, struct monitor_completion *c, bool capability)
{
	const struct setting *p;
	size_t i;

	if (argc == 1) {
		for (i = 0; i < sizeof(settings) / sizeof(settings[0]); i++) {
			if (settings[i].capability != capability)
				continue;
			monitor_complete_add(c, settings[i].name);
			if (settings[i].alias)
				monitor_complete_add(c, settings[i].alias);
		}
	} else if (argc == 2 && (p = setting_find(capability, argv[1])) && p->kind == PARAM_BOOL) {
		monitor_complete_add(c, "on");
		monitor_complete_add(c, "off");
	}
}

static void complete_parameter(struct monitor *mon, int argc, char **argv, struct monitor_completion *c)
{
	complete_setting(argc, argv, c, false);
}

static void complete_capability(struct monitor *mon, int argc, char **argv, struct monitor_completion *c)
{
	complete_setting(argc, argv, c, true);
}

static void complete_info_migrate(struct monitor *mon, int argc, char **argv, struct monitor_completion *c)
{
	monitor_complete_add(c, "--json");
	if (argc == 3)
		monitor_complete_add(c, "--samples");
}

static const struct monitor_cmd migration_cmds[] = {
	{ "migrate", "[-d] [-p] [-r] URI",
	  "migrate the VM to URI (tcp:HOST:PORT, unix:PATH, file:PATH); -p: with postcopy, this migration only; "
	  "-r: resume a paused postcopy migration through URI (migrate_resume); returns at once",
	  cmd_migrate, complete_migrate },
	{ "migrate_pause", "", "break a postcopy migration's connections on purpose: both sides pause, keeping everything",
	  cmd_migrate_pause, NULL },
	{ "migrate_recover", "URI", "destination: listen on URI for the source to resume a paused postcopy migration (after it completed here: "
	  "tell the source every page arrived)",
	  cmd_migrate_recover, complete_migrate },
	{ "migrate_resume", "URI", "source: resume a paused postcopy migration through URI (where migrate_recover listens)",
	  cmd_migrate_resume, complete_migrate },
	{ "migrate_cancel", "", "stop the migration: a source's VM keeps running, a destination ends", cmd_migrate_cancel,
	  NULL },
	{ "migrate_set_parameter", "NAME VALUE", "set a parameter ('info migrate_parameters' lists them)",
	  cmd_set_parameter, complete_parameter },
	{ "migrate_set_capability", "NAME on|off", "postcopy (postcopy-ram), verify ('info migrate_capabilities' lists them)",
	  cmd_set_capability, complete_capability },
	{ "migrate_start_postcopy", "", "switch an ongoing migration to postcopy now", cmd_start_postcopy, NULL },
	{ NULL, NULL, NULL, NULL, NULL },
};

static const struct monitor_cmd migration_info[] = {
	{ "migrate", "[--json [--samples]]",
	  "migration status and figures (--json: one JSON object; --samples: with every fault latency)", info_migrate,
	  complete_info_migrate },
	{ "migrate_parameters", "", "migration parameters", info_migrate_parameters, NULL },
	{ "migrate_capabilities", "", "migration capabilities", info_migrate_capabilities, NULL },
	{ NULL, NULL, NULL, NULL, NULL },
};

int migration_add_commands(struct migration *m, struct monitor *mon)
{
	int ret;

	the_migration = m;
	ret = monitor_add_commands(mon, migration_cmds);
	if (!ret)
		ret = monitor_add_info(mon, migration_info);
	return ret;
}
