/* The predictor, the economics, alert hysteresis (an oscillating value does not flap), and the
 * webhook sender (a dead endpoint never blocks the caller). */
#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/timeutil.h"
#include "health/alerts.h"
#include "health/econ.h"
#include "health/predict.h"
#include "health/rules.h"
#include "health/webhook.h"

static struct health_trends calm(void)
{
	struct health_trends t;
	memset(&t, 0, sizeof(t));
	t.temp_margin_c = 30;
	return t;
}

static void test_predict_model(void **state)
{
	(void)state;
	struct prediction p, q;
	struct health_trends t = calm();
	predict_eval(&t, HEALTH_PASS, 24, &p);
	/* all features 0: the intercept alone */
	assert_true(fabs(p.probability - 1.0 / (1.0 + exp(-PREDICT_B0))) < 1e-12);
	assert_true(p.probability < 0.001);
	assert_false(p.failing);
	assert_int_equal(p.nterms, 7);
	/* each trend raises the risk on its own */
	struct health_trends v[6];
	for (int i = 0; i < 6; i++)
		v[i] = calm();
	v[0].sbe_per_h = 100;
	v[1].corr_rows_24h = 10;
	v[2].pending = true;
	v[3].thermal_frac = 0.5;
	v[4].pcie_ratio = 2;
	v[5].temp_margin_c = 2;
	for (int i = 0; i < 6; i++) {
		predict_eval(&v[i], HEALTH_PASS, 24, &q);
		assert_true(q.probability > p.probability);
	}
	/* SBE growth counts only with enough errors */
	t = calm();
	t.sbe_per_h = 12;
	t.sbe_per_h_recent = 60;
	t.sbe_count = 1;
	predict_eval(&t, HEALTH_PASS, 24, &p);
	assert_true(p.terms[1].x == 0);
	t.sbe_count = PREDICT_SBE_GROWTH_MIN_COUNT;
	predict_eval(&t, HEALTH_PASS, 24, &q);
	assert_true(fabs(q.terms[1].x - log2(61.0 / 13.0)) < 1e-12);
	assert_true(q.probability > p.probability);
	/* the horizon: constant hazard */
	t = calm();
	t.sbe_per_h = 500;
	predict_eval(&t, HEALTH_PASS, 24, &p);
	predict_eval(&t, HEALTH_PASS, 48, &q);
	assert_true(fabs(q.probability - (1 - pow(1 - p.probability, 2))) < 1e-12);
	predict_eval(&t, HEALTH_PASS, 1, &q);
	assert_true(q.probability < p.probability);
	assert_int_equal(p.required, ACT_RESET);
	t = calm();
	t.thermal_frac = 1;
	predict_eval(&t, HEALTH_PASS, 24, &p);
	assert_int_equal(p.required, ACT_DRAIN);
	/* a failing GPU has failed */
	predict_eval(&t, HEALTH_FAIL, 24, &p);
	assert_true(p.failing && p.probability == 1.0);
	/* risk hysteresis */
	assert_int_equal(predict_risk_status(0.5, 0.5, false), HEALTH_WARN);
	assert_int_equal(predict_risk_status(0.45, 0.5, false), HEALTH_PASS);
	assert_int_equal(predict_risk_status(0.45, 0.5, true), HEALTH_WARN);
	assert_int_equal(predict_risk_status(0.39, 0.5, true), HEALTH_PASS);
}

static void test_econ(void **state)
{
	(void)state;
	struct econ_inputs in;
	struct econ_result r;
	econ_defaults(&in);
	/* L = V J (T/2 + R) = 2.5 * 8 * (0.5 + 0.25) */
	assert_int_equal(econ_evaluate(&in, 0.0, false, ACT_KEEP, &r), 0);
	assert_true(fabs(r.job_loss - 15.0) < 1e-9);
	assert_int_equal(r.best, ACT_KEEP); /* no risk: nothing to pay for */
	assert_true(r.cost[ACT_KEEP] == 0);
	/* a DBE (failing, a reset clears it): reset */
	assert_int_equal(econ_evaluate(&in, 1.0, true, ACT_RESET, &r), 0);
	assert_int_equal(r.best, ACT_RESET);
	assert_false(r.resolves[ACT_KEEP] || r.resolves[ACT_DRAIN]);
	assert_true(r.resolves[ACT_RESET] && r.resolves[ACT_REBOOT] && r.resolves[ACT_RMA]);
	/* keep: the job loss and a useless GPU for the horizon */
	assert_true(fabs(r.cost[ACT_KEEP] - (15.0 + 2.5 * 24)) < 1e-9);
	/* reset: its downtime and the residual risk */
	assert_true(fabs(r.cost[ACT_RESET] - (2.5 * 0.1 + 0.2 * 15.0)) < 1e-9);
	/* fell off the bus: only a reboot (or more) clears it; the reboot idles the node */
	assert_int_equal(econ_evaluate(&in, 1.0, true, ACT_REBOOT, &r), 0);
	assert_int_equal(r.best, ACT_REBOOT);
	assert_true(fabs(r.cost[ACT_REBOOT] - (2.5 * 8 * 0.25 + 0.2 * 15.0)) < 1e-9);
	/* a remap failure: only an RMA repairs it; left alone it costs its service life */
	assert_int_equal(econ_evaluate(&in, 1.0, true, ACT_RMA, &r), 0);
	assert_int_equal(r.best, ACT_RMA);
	assert_true(fabs(r.cost[ACT_RMA] - (1500 + 2.5 * 168)) < 1e-9);
	/* ... unless an RMA costs more than the rest of the GPU's life is worth */
	in.rma_cost = 1e6;
	assert_int_equal(econ_evaluate(&in, 1.0, true, ACT_RMA, &r), 0);
	assert_int_not_equal(r.best, ACT_RMA);
	econ_defaults(&in);
	/* a thermal problem: draining clears what needs inspection */
	assert_int_equal(econ_evaluate(&in, 1.0, true, ACT_DRAIN, &r), 0);
	assert_true(r.resolves[ACT_DRAIN]);
	assert_int_equal(r.best, ACT_DRAIN);
	/* risk only: cheap reset beats keeping a 60 % risk; at 1 % keep wins */
	assert_int_equal(econ_evaluate(&in, 0.6, false, ACT_RESET, &r), 0);
	assert_int_equal(r.best, ACT_RESET);
	assert_int_equal(econ_evaluate(&in, 0.01, false, ACT_RESET, &r), 0);
	assert_int_equal(r.best, ACT_KEEP);
	/* bigger jobs make a failure dearer: with 1024-GPU jobs and 2 % risk, reset */
	in.job_gpus = 1024;
	assert_int_equal(econ_evaluate(&in, 0.02, false, ACT_RESET, &r), 0);
	assert_int_equal(r.best, ACT_RESET);
	/* inputs out of range */
	assert_int_equal(econ_evaluate(&in, 1.5, false, ACT_RESET, &r), -22);
	in.job_gpus = 0;
	assert_int_equal(econ_evaluate(&in, 0.5, false, ACT_RESET, &r), -22);
}

static enum alert_action step(struct alerts *a, enum health_status sev, bool now)
{
	enum alert_action act;
	enum health_status open;
	assert_int_equal(alerts_step(a, "GPU-1", "health", sev, now, &act, &open), 0);
	return act;
}

static void test_alert_hysteresis(void **state)
{
	(void)state;
	struct alerts *a;
	struct alerts_opts o = {.raise_after = 3, .clear_after = 6};
	assert_int_equal(alerts_create(&a, &o), 0);
	/* two warnings are not enough; the third raises */
	assert_int_equal(step(a, HEALTH_WARN, false), ALERT_NONE);
	assert_int_equal(step(a, HEALTH_WARN, false), ALERT_NONE);
	assert_int_equal(step(a, HEALTH_WARN, false), ALERT_RAISE);
	assert_int_equal(alerts_open(a, "GPU-1", "health"), HEALTH_WARN);
	assert_int_equal(alerts_open_count(a), 1);
	/* deduplicated: more warnings do nothing */
	for (int i = 0; i < 10; i++)
		assert_int_equal(step(a, HEALTH_WARN, false), ALERT_NONE);
	/* a fail-class event escalates at once */
	assert_int_equal(step(a, HEALTH_FAIL, true), ALERT_ESCALATE);
	assert_int_equal(alerts_open(a, "GPU-1", "health"), HEALTH_FAIL);
	/* back to warn: stays open at fail; five healthy samples are not enough */
	assert_int_equal(step(a, HEALTH_WARN, false), ALERT_NONE);
	for (int i = 0; i < 5; i++)
		assert_int_equal(step(a, HEALTH_PASS, false), ALERT_NONE);
	assert_int_equal(step(a, HEALTH_WARN, false), ALERT_NONE); /* resets the count */
	for (int i = 0; i < 5; i++)
		assert_int_equal(step(a, HEALTH_PASS, false), ALERT_NONE);
	assert_int_equal(step(a, HEALTH_PASS, false), ALERT_CLEAR);
	assert_int_equal(alerts_open_count(a), 0);
	/* another GPU and another kind are separate */
	enum alert_action act;
	enum health_status open;
	assert_int_equal(alerts_step(a, "GPU-2", "health", HEALTH_FAIL, true, &act, &open), 0);
	assert_int_equal(act, ALERT_RAISE);
	assert_int_equal(alerts_step(a, "GPU-2", "failure_risk", HEALTH_WARN, false, &act, &open), 0);
	assert_int_equal(act, ALERT_NONE);
	assert_int_equal(alerts_open(a, "GPU-1", "health"), HEALTH_PASS);
	/* restored from the database: clearing works without raising first */
	assert_int_equal(alerts_restore(a, "GPU-3", "health", HEALTH_FAIL), 0);
	for (int i = 0; i < 5; i++)
		assert_int_equal(alerts_step(a, "GPU-3", "health", HEALTH_PASS, false, &act, &open), 0);
	assert_int_equal(alerts_step(a, "GPU-3", "health", HEALTH_PASS, false, &act, &open), 0);
	assert_int_equal(act, ALERT_CLEAR);
	/* flap damping: raise, clear, raise again soon: the next clear needs 4 x 6 healthy */
	struct alerts *f;
	assert_int_equal(alerts_create(&f, &o), 0);
	int n = 0;
	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < 3; i++)
			n += alerts_step(f, "GPU-f", "health", HEALTH_WARN, false, &act, &open) == 0 && act == ALERT_RAISE;
		int healthy = 0;
		do {
			assert_int_equal(alerts_step(f, "GPU-f", "health", HEALTH_PASS, false, &act, &open), 0);
			healthy++;
		} while (act != ALERT_CLEAR && healthy < 1000);
		assert_int_equal(act, ALERT_CLEAR);
		assert_int_equal(healthy, 6 * (round == 0 ? 1 : round == 1 ? 4 : 16));
	}
	assert_int_equal(n, 3);
	/* a raise long after the last clear starts over at 6 */
	for (int i = 0; i < 10 * 96 + 1; i++)
		assert_int_equal(alerts_step(f, "GPU-f", "health", HEALTH_PASS, false, &act, &open), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(alerts_step(f, "GPU-f", "health", HEALTH_WARN, false, &act, &open), 0);
	assert_int_equal(act, ALERT_RAISE);
	for (int i = 0; i < 6; i++)
		assert_int_equal(alerts_step(f, "GPU-f", "health", HEALTH_PASS, false, &act, &open), 0);
	assert_int_equal(act, ALERT_CLEAR);
	alerts_destroy(f);
	alerts_destroy(a);
}

/* A temperature oscillating around the warning threshold, through the rules and the alerts:
 * at most one raise, no clear, however long it goes on (no flapping). */
static void test_oscillation_does_not_flap(void **state)
{
	(void)state;
	static const struct {
		double mid, amp, period_s;
	} waves[] = {{83.0, 0.6, 20}, {83.0, 1.5, 60}, {82.0, 2.5, 120}, {83.0, 3.5, 600}};
	for (size_t w = 0; w < sizeof(waves) / sizeof(waves[0]); w++) {
		struct rules *r;
		struct alerts *a;
		assert_int_equal(rules_create(&r, NULL), 0);
		assert_int_equal(alerts_create(&a, NULL), 0);
		int raises = 0, clears = 0, changes = 0, warn_samples = 0, above = 0;
		enum health_status last = HEALTH_PASS;
		for (int i = 0; i < 8640; i++) { /* a day at 10 s */
			struct health_sample s;
			memset(&s, 0, sizeof(s));
			snprintf(s.key, sizeof(s.key), "GPU-osc");
			s.time = 1780000000.0 + 10.0 * i;
			double temp = waves[w].mid + waves[w].amp * sin(2 * M_PI * 10.0 * i / waves[w].period_s + 0.3);
			above += temp >= 83.0;
			health_sample_set(&s, HS_GPU_TEMP, temp);
			health_sample_set(&s, HS_SLOWDOWN_TEMP, 89);
			health_sample_set(&s, HS_MAX_OP_TEMP, 85);
			health_sample_set(&s, HS_POWER, 300);
			struct health_result res;
			assert_int_equal(rules_update(r, &s, &res), 0);
			enum alert_action act;
			enum health_status open;
			assert_int_equal(alerts_step(a, res.key, "health", res.status, res.event, &act, &open), 0);
			raises += act == ALERT_RAISE || act == ALERT_ESCALATE;
			clears += act == ALERT_CLEAR;
			changes += res.status != last;
			warn_samples += res.status == HEALTH_WARN;
			last = res.status;
		}
		printf("  %.1f +- %.1f C every %.0f s: %d samples above the threshold, %d status changes, "
		       "%d raise, %d clear\n",
		       waves[w].mid, waves[w].amp, waves[w].period_s, above, changes, raises, clears);
		assert_true(above > 1000 && above < 7640); /* it does cross the threshold both ways */
		assert_true(warn_samples > 0);
		/* within the hysteresis band: one raise, never cleared; across it: damped, it
		 * settles into one open alert after at most two flaps */
		if (waves[w].amp < RULES_TEMP_HYST_C) {
			assert_true(raises <= 1);
			assert_int_equal(clears, 0);
		} else {
			assert_true(raises <= 3);
			assert_true(clears <= 2);
		}
		assert_int_equal(alerts_open(a, "GPU-osc", "health"), HEALTH_WARN);
		rules_destroy(r);
		alerts_destroy(a);
	}
}

/* A listening socket that accepts nothing (backlog only): a webhook that hangs. */
static int hanging_server(int *port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sa);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 1), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	*port = ntohs(sa.sin_port);
	return fd;
}

static void test_webhook_never_blocks(void **state)
{
	(void)state;
	int port;
	int fd = hanging_server(&port);
	char url[64], err[256];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/hook", port);
	struct webhook *w;
	struct webhook_opts o = {.url = url, .timeout_s = 0.3, .retries = 1, .backoff_s = 0.05};
	assert_int_equal(webhook_create(&w, &o, err, sizeof(err)), 0);
	double t0 = time_mono();
	for (int i = 0; i < WEBHOOK_QUEUE_MAX + 10; i++)
		assert_int_equal(webhook_post(w, "{\"a\":1}", 7), 0);
	double spent = time_mono() - t0;
	printf("  %d posts queued in %.4f s against a webhook that never answers\n",
	       WEBHOOK_QUEUE_MAX + 10, spent);
	assert_true(spent < 0.5);
	struct webhook_stats st;
	for (int i = 0; i < 100; i++) {
		webhook_stats(w, &st);
		if (st.failed >= 1)
			break;
		struct timespec ts = {0, 20 * 1000000L};
		nanosleep(&ts, NULL);
	}
	assert_true(st.failed >= 1);
	assert_true(st.attempts >= 2); /* the retry happened */
	assert_true(st.dropped >= 9);  /* the queue is bounded: the oldest went */
	assert_int_equal(st.sent, 0);
	t0 = time_mono();
	webhook_destroy(w); /* an attempt in flight ends by its timeout */
	assert_true(time_mono() - t0 < 1.0);
	close(fd);
	assert_int_equal(webhook_create(&w, &(struct webhook_opts){.url = "ftp://x"}, err, sizeof(err)),
			 -22);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_predict_model),
		cmocka_unit_test(test_econ),
		cmocka_unit_test(test_alert_hysteresis),
		cmocka_unit_test(test_oscillation_does_not_flap),
		cmocka_unit_test(test_webhook_never_blocks),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
