/* The scrape scheduler (backoff, next due, phases; failures driven by an injected clock), the
 * per-target records against the in-process mock exporter (ok, HTTP errors, refused, timeout,
 * max body, gzip), and the targets file parser. */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "collect/scrape.h"
#include "collect/targets.h"
#include "core/timeutil.h"
#include "exporter/exporter.h"

/* ------------------------------------------------------------ schedule arithmetic */

static void test_backoff(void **state)
{
	(void)state;
	/* u = 0 gives half the step, u -> 1 the whole step */
	assert_float_equal(scrape_backoff(10, 120, 1, 0), 5, 1e-9);
	assert_float_equal(scrape_backoff(10, 120, 1, 0.999999), 10, 1e-4);
	assert_float_equal(scrape_backoff(10, 120, 2, 0), 10, 1e-9);
	assert_float_equal(scrape_backoff(10, 120, 3, 0), 20, 1e-9);
	assert_float_equal(scrape_backoff(10, 120, 4, 0.5), 60, 1e-9); /* 80 * 0.75 */
	/* capped */
	assert_float_equal(scrape_backoff(10, 120, 5, 0), 60, 1e-9);
	assert_float_equal(scrape_backoff(10, 120, 50, 0), 60, 1e-9);
	assert_float_equal(scrape_backoff(10, 120, 4000000000u, 0.999999), 120, 1e-3);
	/* jitter stays within [d/2, d) for any u */
	for (int i = 0; i < 100; i++) {
		double u = i / 100.0, d = scrape_backoff(1, 30, 3, u);
		assert_true(d >= 2 && d < 4);
	}
}

static void test_next_due(void **state)
{
	(void)state;
	/* on time: exactly one interval after the due time, whatever the scrape took */
	assert_float_equal(scrape_next_due(100, 10, 100.3), 110, 1e-9);
	assert_float_equal(scrape_next_due(100, 10, 109.9), 110, 1e-9);
	/* overran: the missed slots are skipped, the phase is kept */
	assert_float_equal(scrape_next_due(100, 10, 110), 120, 1e-9);
	assert_float_equal(scrape_next_due(100, 10, 135.5), 140, 1e-9);
	assert_true(scrape_next_due(0, 0.5, 1e6 + 0.25) > 1e6 + 0.25);
}

static void test_phase(void **state)
{
	(void)state;
	char url[64];
	int buckets[10] = {0};
	for (int i = 0; i < 1000; i++) {
		snprintf(url, sizeof(url), "http://10.0.%d.%d:9400/metrics", i / 250, i % 250);
		double p = scrape_phase(url, 10);
		assert_true(p >= 0 && p < 10);
		buckets[(int)p]++;
		assert_float_equal(p, scrape_phase(url, 10), 0); /* stable */
	}
	for (int b = 0; b < 10; b++) /* spread: about 100 per second of the interval */
		assert_true(buckets[b] > 50 && buckets[b] < 150);
}

/* ------------------------------------------------------------ against an exporter */

static struct exporter *EX;
static char ADDR[64];

static int setup_exporter(void **state)
{
	(void)state;
	struct sim_params sp = {
	    .model = sim_model_find("A100-SXM4-80GB"), .n_gpus = 2, .seed = 7, .poll_interval = 10};
	struct sim *sim = NULL;
	assert_int_equal(sim_create(&sim, &sp), 0);
	struct exporter_params ep = {
	    .listen = "127.0.0.1:0",
	    .speed = 1,
	    .poll_interval = 10,
	    .render = {.hostname = "node", .host_label = "hostname",
	               .driver_version = "550.127.08", .model_name = sp.model->model_name},
	    .http_threads = 2};
	char err[512] = "";
	assert_int_equal(exporter_create(&EX, sim, &ep, err, sizeof(err)), 0);
	if (exporter_start(EX, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	snprintf(ADDR, sizeof(ADDR), "%s", exporter_address(EX));
	return 0;
}

static int teardown_exporter(void **state)
{
	(void)state;
	exporter_destroy(EX);
	EX = NULL;
	return 0;
}

struct seen {
	struct scrape *s; /* set: the callback counts the transfers in flight (max_running) */
	int max_running;
	int calls;
	size_t last_len;
	struct timespec when;
	int verdict; /* returned by the callback */
};

static int cb(void *ud, size_t target, const char *url, const char *body, size_t len,
              const struct timespec *when, struct scrape_result *res)
{
	(void)target;
	(void)url;
	struct seen *s = ud;
	s->calls++;
	if (s->s) {
		struct scrape_target_stats st[8];
		size_t n = scrape_target_stats(s->s, st, 8);
		int r = 0;
		for (size_t i = 0; i < n && i < 8; i++)
			r += st[i].running; /* this one's record still says running */
		if (r > s->max_running)
			s->max_running = r;
	}
	s->last_len = len;
	s->when = *when;
	assert_non_null(body);
	assert_non_null(strstr(body, "DCGM_FI_DEV_GPU_TEMP"));
	res->samples = 3;
	res->bad_lines = 1;
	if (s->verdict) {
		snprintf(res->error, sizeof(res->error), "not a dcgm-exporter");
		return s->verdict;
	}
	return 0;
}

static enum scrape_gzip make_gzip = SCRAPE_GZIP_AUTO; /* for the next make() */

static struct scrape *make(struct seen *seen, bool once, size_t max_body, double timeout,
                           double (*clock)(void *), void *clock_ud)
{
	struct scrape_options o = {.interval_s = 10,
	                           .gzip = make_gzip,
	                           .timeout_s = timeout,
	                           .max_body = max_body,
	                           .backoff_max_s = 30,
	                           .once = once,
	                           .cb = cb,
	                           .ud = seen,
	                           .mono = clock,
	                           .clock_ud = clock_ud,
	                           .seed = 42};
	struct scrape *s = NULL;
	char err[256];
	assert_int_equal(scrape_create(&s, &o, err, sizeof(err)), 0);
	return s;
}

static void run_until_tried(struct scrape *s)
{
	double until = time_mono() + 20;
	while (!scrape_once_done(s) && time_mono() < until)
		assert_int_equal(scrape_run(s, 0.05), 0);
	assert_true(scrape_once_done(s));
}

/* a port with nothing listening */
static int closed_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t l = sizeof(a);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	getsockname(fd, (struct sockaddr *)&a, &l);
	close(fd);
	return ntohs(a.sin_port);
}

/* --scrape-gzip: auto asks a loopback exporter for plain text, never asks nobody, always asks
 * everybody; the words parse, others do not. */
static void test_gzip_choice(void **state)
{
	(void)state;
	enum scrape_gzip g = SCRAPE_GZIP_ALWAYS;
	assert_int_equal(scrape_gzip_parse("auto", &g), 0);
	assert_int_equal(g, SCRAPE_GZIP_AUTO);
	assert_int_equal(scrape_gzip_parse("never", &g), 0);
	assert_int_equal(g, SCRAPE_GZIP_NEVER);
	assert_int_equal(scrape_gzip_parse("always", NULL), 0);
	assert_int_equal(scrape_gzip_parse("yes", &g), -EINVAL);
	assert_int_equal(scrape_gzip_parse(NULL, &g), -EINVAL);

	assert_true(scrape_url_is_loopback("http://127.0.0.1:9400/metrics"));
	assert_true(scrape_url_is_loopback("http://127.3.4.5/metrics"));
	assert_true(scrape_url_is_loopback("http://localhost:9400/metrics"));
	assert_true(scrape_url_is_loopback("http://LOCALHOST/metrics"));
	assert_true(scrape_url_is_loopback("http://[::1]:9400/metrics"));
	assert_false(scrape_url_is_loopback("http://128.0.0.1:9400/metrics"));
	assert_false(scrape_url_is_loopback("http://10.0.0.7:9400/metrics"));
	assert_false(scrape_url_is_loopback("http://gpu-node-7:9400/metrics"));
	assert_false(scrape_url_is_loopback("http://127.0.0.1.example.com/metrics"));
	assert_false(scrape_url_is_loopback("not a url"));

	char ok[128];
	snprintf(ok, sizeof(ok), "http://%s/metrics", ADDR);
	const char *urls[] = {ok};
	const enum scrape_gzip when[] = {SCRAPE_GZIP_AUTO, SCRAPE_GZIP_NEVER, SCRAPE_GZIP_ALWAYS};
	for (size_t k = 0; k < 3; k++) {
		struct seen seen = {0};
		struct exporter_stats es0, es1;
		make_gzip = when[k];
		struct scrape *s = make(&seen, true, 16 << 20, 5, NULL, NULL);
		make_gzip = SCRAPE_GZIP_AUTO;
		exporter_get_stats(EX, &es0);
		assert_int_equal(scrape_set_targets(s, urls, 1), 0);
		run_until_tried(s);
		exporter_get_stats(EX, &es1);
		assert_int_equal(seen.calls, 1);
		assert_int_equal(es1.metrics - es0.metrics, 1);
		assert_int_equal(es1.gzip - es0.gzip, when[k] == SCRAPE_GZIP_ALWAYS ? 1 : 0);
		scrape_destroy(s);
	}
}

static void test_once_records(void **state)
{
	(void)state;
	struct seen seen = {0};
	make_gzip = SCRAPE_GZIP_ALWAYS;
	struct scrape *s = make(&seen, true, 16 << 20, 5, NULL, NULL);
	make_gzip = SCRAPE_GZIP_AUTO;
	char ok[128], missing[128], refused[128];
	snprintf(ok, sizeof(ok), "http://%s/metrics", ADDR);
	snprintf(missing, sizeof(missing), "http://%s/nope", ADDR);
	snprintf(refused, sizeof(refused), "http://127.0.0.1:%d/metrics", closed_port());
	const char *urls[] = {ok, missing, refused};
	struct exporter_stats es0, es1;
	exporter_get_stats(EX, &es0);
	double before = time_now();
	assert_int_equal(scrape_set_targets(s, urls, 3), 0);
	run_until_tried(s);
	double after = time_now();
	exporter_get_stats(EX, &es1);

	assert_int_equal(seen.calls, 1);
	double when = (double)seen.when.tv_sec + seen.when.tv_nsec / 1e9;
	assert_true(when >= before && when <= after);
	assert_int_equal(es1.gzip - es0.gzip, 1); /* asked for gzip, got it */

	struct scrape_target_stats st[3];
	assert_int_equal(scrape_target_stats(s, st, 3), 3);
	assert_string_equal(st[0].url, ok);
	assert_int_equal(st[0].ok, 1);
	assert_int_equal(st[0].failed, 0);
	assert_int_equal(st[0].consecutive_failures, 0);
	assert_true(st[0].last_success >= before && st[0].last_success <= after);
	assert_int_equal(st[0].last_bytes, seen.last_len); /* decoded size */
	assert_true(st[0].last_bytes > 1000);
	assert_int_equal(st[0].samples, 3);
	assert_int_equal(st[0].bad_lines, 1);
	assert_true(st[0].next_in_s < 0); /* once: never again */

	assert_int_equal(st[1].ok, 0);
	assert_int_equal(st[1].failed, 1);
	assert_string_equal(st[1].last_error, "HTTP status 404");
	assert_true(st[1].last_success == 0);

	assert_int_equal(st[2].failed, 1);
	assert_int_equal(st[2].consecutive_failures, 1);
	assert_non_null(
	    strstr(st[2].last_error, "onnect")); /* "Couldn't connect", "Failed to connect" */
	scrape_destroy(s);
}

static void test_callback_verdict_and_max_body(void **state)
{
	(void)state;
	char ok[128];
	snprintf(ok, sizeof(ok), "http://%s/metrics", ADDR);
	const char *urls[] = {ok};

	struct seen seen = {.verdict = -EBADMSG};
	struct scrape *s = make(&seen, true, 16 << 20, 5, NULL, NULL);
	assert_int_equal(scrape_set_targets(s, urls, 1), 0);
	run_until_tried(s);
	struct scrape_target_stats st;
	scrape_target_stats(s, &st, 1);
	assert_int_equal(st.failed, 1);
	assert_string_equal(st.last_error, "not a dcgm-exporter");
	scrape_destroy(s);

	/* a body over max_body: aborted, counted, the callback never sees it */
	struct seen seen2 = {0};
	s = make(&seen2, true, 2048, 5, NULL, NULL);
	assert_int_equal(scrape_set_targets(s, urls, 1), 0);
	run_until_tried(s);
	scrape_target_stats(s, &st, 1);
	assert_int_equal(seen2.calls, 0);
	assert_int_equal(st.failed, 1);
	assert_int_equal(st.too_large, 1);
	assert_non_null(strstr(st.last_error, "larger than --max-body 2048"));
	scrape_destroy(s);
}

static void test_timeout(void **state)
{
	(void)state;
	/* a listener that never answers: the connection is accepted by the kernel, no reply */
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t l = sizeof(a);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fd, 8), 0);
	getsockname(fd, (struct sockaddr *)&a, &l);
	char url[128];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", ntohs(a.sin_port));
	const char *urls[] = {url};
	struct seen seen = {0};
	struct scrape *s = make(&seen, true, 1 << 20, 0.3, NULL, NULL);
	assert_int_equal(scrape_set_targets(s, urls, 1), 0);
	double t0 = time_mono();
	run_until_tried(s);
	double took = time_mono() - t0;
	struct scrape_target_stats st;
	scrape_target_stats(s, &st, 1);
	assert_int_equal(st.failed, 1);
	assert_non_null(strstr(st.last_error, "imed out"));
	assert_true(took >= 0.25 && took < 3);
	scrape_destroy(s);
	close(fd);
}

/* An injected monotonic clock: the schedule follows it, not real time. */
static double fake_now;
static double fake_clock(void *ud)
{
	(void)ud;
	return fake_now;
}

/* Runs until the target has `n` completed attempts (real I/O, fake schedule clock). */
static void run_until_attempts(struct scrape *s, uint64_t n, struct scrape_target_stats *st)
{
	double until = time_mono() + 20;
	do {
		assert_int_equal(scrape_run(s, 0.02), 0);
		scrape_target_stats(s, st, 1);
	} while (st->ok + st->failed < n && time_mono() < until);
	assert_int_equal(st->ok + st->failed, n);
}

static void test_backoff_schedule(void **state)
{
	(void)state;
	char url[128];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", closed_port());
	const char *urls[] = {url};
	struct seen seen = {0};
	fake_now = 1000;
	struct scrape *s = make(&seen, false, 1 << 20, 2, fake_clock, NULL);
	assert_int_equal(scrape_set_targets(s, urls, 1), 0);
	struct scrape_target_stats st;
	scrape_target_stats(s, &st, 1);
	/* first scrape at the URL's phase within the interval */
	assert_float_equal(st.next_in_s, scrape_phase(url, 10), 1e-9);
	/* nothing happens before it is due, however long we run */
	for (int i = 0; i < 5; i++)
		assert_int_equal(scrape_run(s, 0.01), 0);
	scrape_target_stats(s, &st, 1);
	assert_int_equal(st.failed, 0);

	/* failures: 5..10 s, 10..20, 20..30 (capped at backoff_max 30), 15..30 after that */
	const double lo[] = {5, 10, 15, 15, 15}, hi[] = {10, 20, 30, 30, 30};
	fake_now += st.next_in_s;
	for (unsigned k = 0; k < 5; k++) {
		run_until_attempts(s, k + 1, &st);
		assert_int_equal(st.consecutive_failures, k + 1);
		assert_true(st.next_in_s >= lo[k] - 1e-9 && st.next_in_s < hi[k]);
		/* not retried before the backoff is over */
		fake_now += st.next_in_s * 0.9;
		for (int i = 0; i < 3; i++)
			assert_int_equal(scrape_run(s, 0.01), 0);
		struct scrape_target_stats again;
		scrape_target_stats(s, &again, 1);
		assert_int_equal(again.failed, k + 1);
		fake_now += again.next_in_s;
	}

	/* the target comes back: the exporter's URL replaces it; a success resets the count and
	 * puts it back on its interval */
	char good[128];
	snprintf(good, sizeof(good), "http://%s/metrics", ADDR);
	const char *both[] = {url, good};
	assert_int_equal(scrape_set_targets(s, both, 2), 0);
	struct scrape_target_stats two[2];
	scrape_target_stats(s, two, 2);
	assert_int_equal(two[0].failed, 5); /* kept its record across the change */
	fake_now += two[1].next_in_s;
	double until = time_mono() + 20;
	do {
		assert_int_equal(scrape_run(s, 0.02), 0);
		scrape_target_stats(s, two, 2);
	} while (two[1].ok < 1 && time_mono() < until);
	assert_int_equal(two[1].ok, 1);
	assert_float_equal(two[1].next_in_s, 10, 1e-6); /* due + interval, on the fake clock */
	scrape_destroy(s);
}

/* A scrape that completes 2.5 intervals after it was due: the two intervals that passed are
 * skipped (the schedule keeps its phase) and counted as missed, not silently lost. */
static void test_missed_intervals(void **state)
{
	(void)state;
	char good[128];
	snprintf(good, sizeof(good), "http://%s/metrics", ADDR);
	const char *urls[] = {good};
	struct seen seen = {0};
	fake_now = 7000;
	struct scrape *s = make(&seen, false, 1 << 20, 5, fake_clock, NULL);
	assert_int_equal(scrape_set_targets(s, urls, 1), 0);
	struct scrape_target_stats st;
	scrape_target_stats(s, &st, 1);
	fake_now += st.next_in_s; /* on time */
	run_until_attempts(s, 1, &st);
	assert_int_equal(st.missed, 0);
	assert_float_equal(st.next_in_s, 10, 1e-6);
	fake_now += st.next_in_s + 25; /* 2.5 intervals late */
	run_until_attempts(s, 2, &st);
	assert_int_equal(st.ok, 2);
	assert_int_equal(st.missed, 2);
	assert_float_equal(st.next_in_s, 5, 1e-6); /* back on its phase */
	scrape_destroy(s);
}

/* Round `round` of three targets due together: runs until each has `round` successes. */
static void run_round(struct scrape *s, uint64_t round)
{
	struct scrape_target_stats st[3];
	double until = time_mono() + 20;
	bool done;
	do {
		assert_int_equal(scrape_run(s, 0.02), 0);
		scrape_target_stats(s, st, 3);
		done = true;
		for (int i = 0; i < 3; i++)
			done &= st[i].ok == round;
	} while (!done && time_mono() < until);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(st[i].ok, round);
		assert_int_equal(st[i].failed, 0);
	}
}

/* The in-flight budget: three targets due at once start together while their body sizes are
 * unknown (and under a budget that holds them), one at a time once each is known to exceed the
 * budget, and every one is still scraped (held back, never dropped). */
static void test_inflight_budget(void **state)
{
	(void)state;
	char u[3][160];
	const char *urls[3];
	for (int i = 0; i < 3; i++) {
		snprintf(u[i], sizeof(u[i]), "http://%s/metrics?target=%d", ADDR, i);
		urls[i] = u[i];
	}
	for (int budget = 0; budget < 2; budget++) {
		struct seen seen = {0};
		struct scrape_options o = {.interval_s = 10,
		                           .timeout_s = 5,
		                           .max_body = 1 << 20,
		                           .max_inflight_bytes = budget ? 1 : 0, /* 0: 32 MiB */
		                           .cb = cb,
		                           .ud = &seen,
		                           .mono = fake_clock,
		                           .seed = 42};
		struct scrape *s = NULL;
		char err[256];
		assert_int_equal(scrape_create(&s, &o, err, sizeof(err)), 0);
		seen.s = s;
		fake_now = 5000;
		assert_int_equal(scrape_set_targets(s, urls, 3), 0);
		fake_now += 10; /* all three past their phase: due together */
		run_round(s, 1);
		assert_int_equal(seen.max_running, 3); /* sizes unknown: no holding back */
		seen.max_running = 0;
		fake_now += 10;
		run_round(s, 2);
		assert_int_equal(seen.max_running, budget ? 1 : 3);
		assert_int_equal(seen.calls, 6);
		scrape_destroy(s);
	}
}

/* ------------------------------------------------------------ targets */

static void test_targets_file(void **state)
{
	(void)state;
	struct targets t;
	char err[512] = "";
	targets_init(&t);
	const char *text = "# fleet A\n"
	                   "\n"
	                   "http://node-1:9400/metrics\n"
	                   "   https://node-2.example:9400/metrics   # rack 7\r\n"
	                   "\t# indented comment\n"
	                   "http://10.0.0.3:9400/metrics?x=1#frag\n"
	                   "http://[::1]:9400/metrics";
	assert_int_equal(targets_parse(&t, text, strlen(text), "fleet.txt", err, sizeof(err)), 0);
	assert_int_equal(t.n, 4);
	assert_string_equal(t.urls[0], "http://node-1:9400/metrics");
	assert_string_equal(t.origins[0], "fleet.txt:3");
	assert_string_equal(t.urls[1], "https://node-2.example:9400/metrics");
	assert_string_equal(t.urls[2], "http://10.0.0.3:9400/metrics?x=1#frag");
	assert_string_equal(t.urls[3], "http://[::1]:9400/metrics");
	assert_string_equal(t.origins[3], "fleet.txt:7");
	targets_free(&t);

	struct {
		const char *text, *want;
		int rc;
	} bad[] = {
	    {"http://a:1/m\nftp://b/m\n", "f.txt:2: 'ftp://b/m': not an http:// or https:// URL",
	     -EINVAL},
	    {"\n\nnode-3:9400/metrics\n", "f.txt:3: 'node-3:9400/metrics': not an http://",
	     -EINVAL},
	    {"http://a:1/m http://b:1/m\n", "f.txt:1: more than one word", -EINVAL},
	    {"http:///metrics\n", "f.txt:1: 'http:///metrics'", -EINVAL},
	    {"http://a:1/m\n# c\nhttp://a:1/m\n",
	     "f.txt:3: 'http://a:1/m' is already listed (f.txt:1)", -EEXIST},
	    {"http://a:99999/m\n", "f.txt:1: 'http://a:99999/m': not a valid URL", -EINVAL},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		targets_init(&t);
		err[0] = '\0';
		int rc =
		    targets_parse(&t, bad[i].text, strlen(bad[i].text), "f.txt", err, sizeof(err));
		if (rc != bad[i].rc || !strstr(err, bad[i].want))
			fail_msg("case %zu: rc %d, err '%s', want %d '%s'", i, rc, err, bad[i].rc,
			         bad[i].want);
		targets_free(&t);
	}

	/* the file itself */
	char path[] = "/tmp/gh-targets-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	const char *ft = "http://x:1/metrics\nhttp://y:1/metrics\n";
	assert_int_equal(write(fd, ft, strlen(ft)), (ssize_t)strlen(ft));
	close(fd);
	targets_init(&t);
	assert_int_equal(targets_load_file(&t, path, err, sizeof(err)), 0);
	assert_int_equal(t.n, 2);
	targets_free(&t);
	unlink(path);
	targets_init(&t);
	assert_int_equal(targets_load_file(&t, path, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, path));
	targets_free(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_backoff),
	    cmocka_unit_test(test_next_due),
	    cmocka_unit_test(test_phase),
	    cmocka_unit_test(test_targets_file),
	    cmocka_unit_test(test_once_records),
	    cmocka_unit_test(test_gzip_choice),
	    cmocka_unit_test(test_callback_verdict_and_max_body),
	    cmocka_unit_test(test_timeout),
	    cmocka_unit_test(test_backoff_schedule),
	    cmocka_unit_test(test_inflight_budget),
	    cmocka_unit_test(test_missed_intervals),
	};
	return cmocka_run_group_tests(tests, setup_exporter, teardown_exporter);
}
