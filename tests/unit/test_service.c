/* The host loop (core/service.h) over stand-in services: start in order and stop in reverse,
 * --duration, the stats line's cadence, a start that fails, a service that fails or is done,
 * a verdict, SIGHUP, sd_notify's READY/WATCHDOG/STOPPING, and a stop signal. One process, one
 * set of signal flags: the stop signal's test runs last. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/service.h"
#include "core/timeutil.h"

/* ------------------------------------------------------------------ the stand-in */

static char events[512]; /* what happened, in order: "start:A stop:A ..." */

static void note(const char *what, const char *name)
{
	size_t off = strlen(events);
	snprintf(events + off, sizeof(events) - off, "%s%s:%s", off ? " " : "", what, name);
}

struct fake {
	const char *name;
	int start_rc;       /* what start returns */
	int ticks;          /* ticks seen */
	int fail_at_tick;   /* > 0: failed from this tick on */
	int done_at_tick;   /* > 0: done from this tick on */
	int signal_at_tick; /* > 0: raise(signal) at this tick */
	int signal;
	int verdict_rc;
	int lines, final_lines; /* stats lines asked for */
	double line_at[64];     /* time_mono() of each running line */
	int reloads;
	enum service_stop how;
	bool destroyed;
};

static int f_start(void *impl, char *err, size_t errlen)
{
	struct fake *f = impl;
	note("start", f->name);
	if (f->start_rc)
		snprintf(err, errlen, "%s: cannot start (test)", f->name);
	return f->start_rc;
}

static void f_tick(void *impl, double now)
{
	(void)now;
	struct fake *f = impl;
	f->ticks++;
	if (f->signal_at_tick && f->ticks == f->signal_at_tick)
		raise(f->signal);
}

static void f_status(void *impl, struct service_status *out)
{
	struct fake *f = impl;
	if (f->fail_at_tick && f->ticks >= f->fail_at_tick) {
		out->state = SERVICE_FAILED;
		snprintf(out->last_error, sizeof(out->last_error), "broken (test)");
	} else if (f->done_at_tick && f->ticks >= f->done_at_tick) {
		out->state = SERVICE_DONE;
	}
}

static int f_stats_line(void *impl, bool final, double uptime_s, char *buf, size_t len)
{
	struct fake *f = impl;
	if (final) {
		f->final_lines++;
	} else {
		if (f->lines < 64)
			f->line_at[f->lines] = time_mono();
		f->lines++;
	}
	return snprintf(buf, len, "%s:%s uptime=%.2f", f->name, final ? " stopped;" : "", uptime_s);
}

static int f_notify_text(void *impl, bool ready, char *buf, size_t len)
{
	struct fake *f = impl;
	return snprintf(buf, len, "%s %s", f->name, ready ? "ready" : "running");
}

static int f_reload(void *impl)
{
	struct fake *f = impl;
	f->reloads++;
	return 0;
}

static void f_stop(void *impl, enum service_stop how)
{
	struct fake *f = impl;
	f->how = how;
	note("stop", f->name);
}

static int f_verdict(void *impl)
{
	struct fake *f = impl;
	return f->verdict_rc;
}

static void f_destroy(void *impl)
{
	struct fake *f = impl;
	f->destroyed = true;
	note("destroy", f->name);
}

static int f_create(void **impl, const struct config *cfg, char *err, size_t errlen)
{
	(void)impl;
	(void)cfg;
	snprintf(err, errlen, "bad option (test)");
	return -EINVAL;
}

static const struct service_ops fake_ops = {
    .name = "fake",
    .tick_s = 0.02,
    .create = f_create,
    .start = f_start,
    .tick = f_tick,
    .status = f_status,
    .stats_line = f_stats_line,
    .notify_text = f_notify_text,
    .reload = f_reload,
    .stop = f_stop,
    .verdict = f_verdict,
    .destroy = f_destroy,
};

/* Runs the host over fakes[0..n) (each wrapped, then destroyed); returns the exit status and
 * the seconds it took in *took. */
static int host(struct fake *fakes, size_t n, double duration, double every, double *took)
{
	struct service *svcs[4];
	assert_true(n <= 4);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(service_wrap(&svcs[i], &fake_ops, &fakes[i]), 0);
	struct service_host_options o = {
	    .name = "test", .duration_s = duration, .stats_interval_s = every};
	double t0 = time_mono();
	int rc = service_host_run(svcs, n, &o);
	*took = time_mono() - t0;
	for (size_t i = 0; i < n; i++)
		service_destroy(svcs[i]);
	return rc;
}

/* ------------------------------------------------------------------ the tests */

static int notify_fd = -1;

/* the notify socket's reader: the kernel queues only a few datagrams (net.unix.max_dgram_qlen,
 * often 10) and a sender blocks past that, as it would on a service manager that stopped
 * reading */
struct notes {
	char first[256], last[256];
	int n, watchdogs;
};

static void *reader(void *arg)
{
	struct notes *nt = arg;
	char msg[256];
	ssize_t r;
	while ((r = recv(notify_fd, msg, sizeof(msg) - 1, 0)) > 0) {
		msg[r] = '\0';
		if (nt->n++ == 0)
			snprintf(nt->first, sizeof(nt->first), "%s", msg);
		snprintf(nt->last, sizeof(nt->last), "%s", msg);
		nt->watchdogs += strcmp(msg, "WATCHDOG=1") == 0;
		if (strcmp(msg, "STOPPING=1") == 0)
			break;
	}
	return NULL;
}

/* READY=1 with the services' texts, WATCHDOG=1 pings ($WATCHDOG_USEC, set in main), STATUS=
 * updates with the stats lines, then STOPPING=1 last. */
static void test_notify(void **state)
{
	(void)state;
	struct notes nt;
	memset(&nt, 0, sizeof(nt));
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, reader, &nt), 0);
	struct fake f[2] = {{.name = "A"}, {.name = "B"}};
	double took;
	assert_int_equal(host(f, 2, 0.5, 0.2, &took), SERVICE_EXIT_OK);
	pthread_join(th, NULL);
	assert_string_equal(nt.first, "READY=1\nSTATUS=A ready; B ready");
	assert_string_equal(nt.last, "STOPPING=1");
	assert_true(nt.watchdogs >= 3);        /* every 0.1 s of the 0.5 s (a 0.2 s period) */
	assert_true(nt.n >= nt.watchdogs + 3); /* READY, a STATUS= update, STOPPING */
	unsetenv("NOTIFY_SOCKET");             /* the other tests send nothing */
}

static void test_order_and_duration(void **state)
{
	(void)state;
	events[0] = '\0';
	struct fake f[3] = {{.name = "A"}, {.name = "B"}, {.name = "C"}};
	double took;
	assert_int_equal(host(f, 3, 0.3, 0, &took), SERVICE_EXIT_OK);
	assert_string_equal(events, "start:A start:B start:C stop:C stop:B stop:A destroy:A "
	                            "destroy:B destroy:C");
	assert_true(took >= 0.3);
	assert_true(took < 1.5);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(f[i].how, SERVICE_STOP_CLEAN);
		assert_int_equal(f[i].lines, 0); /* no --stats-interval: only the final line */
		assert_int_equal(f[i].final_lines, 1);
		assert_true(f[i].ticks > 3);
		assert_int_equal(f[i].reloads, 0);
	}
}

static void test_stats_cadence(void **state)
{
	(void)state;
	struct fake f[1] = {{.name = "A"}};
	double took;
	assert_int_equal(host(f, 1, 0.55, 0.1, &took), SERVICE_EXIT_OK);
	/* at 0.1, 0.2, ... 0.5 s: a loaded machine may make one late, never one more */
	assert_true(f[0].lines >= 4);
	assert_true(f[0].lines <= 5);
	for (int i = 1; i < f[0].lines; i++)
		assert_true(f[0].line_at[i] - f[0].line_at[i - 1] >= 0.099);
	assert_int_equal(f[0].final_lines, 1);
}

static void test_start_failure(void **state)
{
	(void)state;
	events[0] = '\0';
	struct fake f[3] = {{.name = "A"}, {.name = "B", .start_rc = -EIO}, {.name = "C"}};
	double took;
	assert_int_equal(host(f, 3, 5, 0.1, &took), SERVICE_EXIT_FAILURE);
	/* A stopped at once, B never ran, C never started; each destroyed */
	assert_string_equal(events, "start:A start:B stop:A destroy:A destroy:B destroy:C");
	assert_int_equal(f[0].how, SERVICE_STOP_NOW);
	assert_int_equal(f[0].final_lines, 0);
	assert_true(took < 1);

	events[0] = '\0';
	struct fake g[1] = {{.name = "A", .start_rc = -EINVAL}}; /* e.g. --listen not understood */
	assert_int_equal(host(g, 1, 5, 0, &took), SERVICE_EXIT_USAGE);
	assert_string_equal(events, "start:A destroy:A");
}

static void test_create_failure(void **state)
{
	(void)state;
	/* service_main: create's -EINVAL is bad usage; nothing started */
	events[0] = '\0';
	assert_int_equal(service_main(&fake_ops, NULL), SERVICE_EXIT_USAGE);
	assert_string_equal(events, "");
}

static void test_failed_service(void **state)
{
	(void)state;
	struct fake f[2] = {{.name = "A"}, {.name = "B", .fail_at_tick = 3}};
	double took;
	assert_int_equal(host(f, 2, 5, 0, &took), SERVICE_EXIT_FAILURE);
	assert_true(took < 1);
	assert_true(f[0].destroyed && f[1].destroyed);
	assert_int_equal(f[1].final_lines, 1);
}

static void test_done_and_verdict(void **state)
{
	(void)state;
	struct fake f[1] = {{.name = "A", .done_at_tick = 2}}; /* collector --once */
	double took;
	assert_int_equal(host(f, 1, 5, 0, &took), SERVICE_EXIT_OK);
	assert_true(took < 1);
	assert_int_equal(f[0].final_lines, 1);

	struct fake g[2] = {{.name = "A", .done_at_tick = 2, .verdict_rc = -1}, {.name = "B"}};
	assert_int_equal(host(g, 2, 5, 0, &took), SERVICE_EXIT_FAILURE); /* events lost at stop */
}

static void test_hup_reloads(void **state)
{
	(void)state;
	struct fake f[2] = {{.name = "A", .signal_at_tick = 3, .signal = SIGHUP}, {.name = "B"}};
	double took;
	assert_int_equal(host(f, 2, 0.4, 0, &took), SERVICE_EXIT_OK);
	assert_int_equal(f[0].reloads, 1);
	assert_int_equal(f[1].reloads, 1);
	assert_true(took >= 0.4); /* a reload, not a stop */
}

static void test_signal_stops(void **state)
{
	(void)state;
	events[0] = '\0';
	struct fake f[2] = {{.name = "A"}, {.name = "B", .signal_at_tick = 3, .signal = SIGTERM}};
	double took;
	assert_int_equal(host(f, 2, 30, 0, &took), SERVICE_EXIT_OK);
	assert_true(took < 1);
	assert_string_equal(events, "start:A start:B stop:B stop:A destroy:A destroy:B");
	assert_int_equal(f[0].final_lines, 1);
}

int main(void)
{
	/* an sd_notify socket for the whole run (test_notify reads it first) */
	char path[108];
	snprintf(path, sizeof(path), "/tmp/gh-test-service-%ld.sock", (long)getpid());
	unlink(path);
	notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (notify_fd < 0 || bind(notify_fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		perror("notify socket");
		return 1;
	}
	setenv("NOTIFY_SOCKET", path, 1);
	setenv("WATCHDOG_USEC", "200000", 1);
	unsetenv("WATCHDOG_PID");
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_notify),           cmocka_unit_test(test_order_and_duration),
	    cmocka_unit_test(test_stats_cadence),    cmocka_unit_test(test_start_failure),
	    cmocka_unit_test(test_create_failure),   cmocka_unit_test(test_failed_service),
	    cmocka_unit_test(test_done_and_verdict), cmocka_unit_test(test_hup_reloads),
	    cmocka_unit_test(test_signal_stops), /* last: the stop flag stays */
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	close(notify_fd);
	unlink(path);
	return rc;
}
