#include "core/service.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/log.h"
#include "core/notify.h"
#include "core/signals.h"
#include "core/timeutil.h"

#define DEFAULT_TICK_S 0.1
#define LINE_MAX_BYTES 4096

struct service {
	const struct service_ops *ops;
	void *impl;               /* owned */
	pthread_mutex_t lock;     /* guards state: service_status may be called from any thread */
	enum service_state state; /* CREATED, RUNNING (started) or STOPPED, as the host sees it */
	double started;           /* time_mono() of the start */
};

int service_wrap(struct service **out, const struct service_ops *ops, void *impl)
{
	*out = NULL;
	struct service *s = calloc(1, sizeof(*s));
	if (!s) {
		if (impl)
			ops->destroy(impl);
		return -ENOMEM;
	}
	s->ops = ops;
	s->impl = impl;
	s->state = SERVICE_CREATED;
	pthread_mutex_init(&s->lock, NULL);
	*out = s;
	return 0;
}

int service_create(struct service **out, const struct service_ops *ops, const struct config *cfg,
                   char *err, size_t errlen)
{
	*out = NULL;
	if (errlen)
		err[0] = '\0';
	if (!ops->create) {
		snprintf(err, errlen, "%s: cannot be made from the configuration", ops->name);
		return -ENOTSUP;
	}
	void *impl = NULL;
	int rc = ops->create(&impl, cfg, err, errlen);
	if (rc)
		return rc;
	rc = service_wrap(out, ops, impl);
	if (rc)
		snprintf(err, errlen, "out of memory");
	return rc;
}

const char *service_name(const struct service *s)
{
	return s->ops->name;
}

void *service_impl(const struct service *s)
{
	return s->impl;
}

static void set_state(struct service *s, enum service_state st)
{
	pthread_mutex_lock(&s->lock);
	s->state = st;
	pthread_mutex_unlock(&s->lock);
}

static enum service_state get_state(struct service *s)
{
	pthread_mutex_lock(&s->lock);
	enum service_state st = s->state;
	pthread_mutex_unlock(&s->lock);
	return st;
}

int service_start(struct service *s, char *err, size_t errlen)
{
	if (errlen)
		err[0] = '\0';
	if (get_state(s) != SERVICE_CREATED) {
		snprintf(err, errlen, "%s: already started", s->ops->name);
		return -EALREADY;
	}
	s->started = time_mono();
	int rc = s->ops->start(s->impl, err, errlen);
	if (rc == 0)
		set_state(s, SERVICE_RUNNING);
	return rc;
}

void service_tick(struct service *s, double now)
{
	if (s->ops->tick && get_state(s) == SERVICE_RUNNING)
		s->ops->tick(s->impl, now);
}

void service_status(struct service *s, struct service_status *out)
{
	memset(out, 0, sizeof(*out));
	enum service_state own = get_state(s);
	out->state = own;
	if (!s->ops->status || own == SERVICE_CREATED)
		return;
	struct service_status st;
	memset(&st, 0, sizeof(st));
	st.state = SERVICE_RUNNING;
	s->ops->status(s->impl, &st);
	memcpy(out->last_error, st.last_error, sizeof(out->last_error));
	out->last_error[sizeof(out->last_error) - 1] = '\0';
	/* a failure stays a failure after the stop; otherwise stopped is stopped */
	if (st.state == SERVICE_FAILED || own == SERVICE_RUNNING)
		out->state = st.state;
}

int service_stats_line(struct service *s, bool final, char *buf, size_t len)
{
	if (len)
		buf[0] = '\0';
	if (!s->ops->stats_line || get_state(s) == SERVICE_CREATED)
		return 0;
	int n = s->ops->stats_line(s->impl, final, time_mono() - s->started, buf, len);
	return n < 0 ? 0 : n;
}

int service_notify_text(struct service *s, bool ready, char *buf, size_t len)
{
	if (len)
		buf[0] = '\0';
	if (!s->ops->notify_text)
		return 0;
	int n = s->ops->notify_text(s->impl, ready, buf, len);
	return n < 0 ? 0 : n;
}

int service_reload(struct service *s)
{
	if (!s->ops->reload || get_state(s) != SERVICE_RUNNING)
		return 0;
	return s->ops->reload(s->impl);
}

void service_drain(struct service *s, double max_s)
{
	if (s->ops->drain && max_s > 0 && get_state(s) == SERVICE_RUNNING)
		s->ops->drain(s->impl, max_s);
}

void service_stop(struct service *s, enum service_stop how)
{
	if (get_state(s) != SERVICE_RUNNING)
		return;
	s->ops->stop(s->impl, how);
	set_state(s, SERVICE_STOPPED);
}

int service_verdict(struct service *s)
{
	struct service_status st;
	service_status(s, &st);
	int rc = st.state == SERVICE_FAILED ? -1 : 0;
	if (s->ops->verdict && get_state(s) != SERVICE_CREATED && s->ops->verdict(s->impl) != 0)
		rc = -1;
	return rc;
}

void service_destroy(struct service *s)
{
	if (!s)
		return;
	service_stop(s, SERVICE_STOP_CLEAN);
	if (s->impl)
		s->ops->destroy(s->impl);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

/* ------------------------------------------------------------------ the host loop */

/* READY=1 or a plain STATUS= update with the services' texts joined by "; " (none: READY=1
 * alone, or nothing). */
static void send_notify(struct service *const *svcs, size_t n, bool ready)
{
	char text[1024] = "", one[512];
	size_t off = 0;
	for (size_t i = 0; i < n; i++) {
		if (service_notify_text(svcs[i], ready, one, sizeof(one)) <= 0)
			continue;
		int w = snprintf(text + off, sizeof(text) - off, "%s%s", off ? "; " : "", one);
		if (w < 0 || (size_t)w >= sizeof(text) - off)
			break;
		off += (size_t)w;
	}
	if (off)
		notify_status(ready, "%s", text);
	else if (ready)
		notify_send("READY=1");
}

static void log_stats(struct service *const *svcs, size_t n, bool final)
{
	static char line[LINE_MAX_BYTES]; /* the host's thread only */
	for (size_t i = 0; i < n; i++)
		if (service_stats_line(svcs[i], final, line, sizeof(line)) > 0)
			log_info("%s", line);
}

int service_host_run(struct service *const *svcs, size_t n, const struct service_host_options *o)
{
	const char *name = o->name ? o->name : service_name(svcs[0]);
	signals_install();
	double tick = o->tick_s; /* else the smallest of the services' */
	for (size_t i = 0; i < n && !(o->tick_s > 0); i++)
		if (svcs[i]->ops->tick_s > 0 && (!(tick > 0) || svcs[i]->ops->tick_s < tick))
			tick = svcs[i]->ops->tick_s;
	if (!(tick > 0))
		tick = DEFAULT_TICK_S;
	uint64_t wd = notify_watchdog_usec();
	if (wd && (double)wd / 4e6 < tick) /* ping at half the period, with room to spare */
		tick = (double)wd / 4e6;

	int status = SERVICE_EXIT_OK;
	size_t started = 0;
	char err[1024];
	for (; started < n; started++) {
		int rc = service_start(svcs[started], err, sizeof(err));
		if (rc) {
			if (err[0])
				log_error("%s", err);
			status = rc == -EINVAL ? SERVICE_EXIT_USAGE : SERVICE_EXIT_FAILURE;
			break;
		}
	}
	if (started < n) {
		for (size_t i = started; i-- > 0;)
			service_stop(svcs[i], SERVICE_STOP_NOW);
		return status;
	}
	send_notify(svcs, n, true);

	double start = time_mono(), last = start;
	double every = o->stats_interval_s;
	for (;;) {
		double nap = tick;
		if (o->duration_s >= 0 && start + o->duration_s - time_mono() < nap)
			nap = start + o->duration_s - time_mono();
		signals_wait(nap); /* returns at once on a signal */
		double now = time_mono();
		notify_watchdog_tick(now);
		if (signals_stop_requested()) {
			log_info("%s: signal %d, stopping", name, signals_stop_signal());
			break;
		}
		if (o->duration_s >= 0 && now - start >= o->duration_s) {
			log_info("%s: --duration reached, stopping", name);
			break;
		}
		bool hup = signals_take_hup(), stop = false;
		for (size_t i = 0; i < n && !stop; i++) {
			service_tick(svcs[i], now);
			struct service_status st;
			service_status(svcs[i], &st);
			if (st.state == SERVICE_FAILED) {
				log_error("%s: stopped: %s", service_name(svcs[i]),
				          st.last_error[0] ? st.last_error : "failed");
				status = SERVICE_EXIT_FAILURE;
				stop = true;
			} else if (st.state == SERVICE_DONE) {
				stop = true;
			} else if (hup) {
				service_reload(svcs[i]);
			}
		}
		if (stop)
			break;
		if (every > 0 && now - last >= every) {
			log_stats(svcs, n, false);
			send_notify(svcs, n, false);
			last = now;
		}
	}
	notify_send("STOPPING=1");
	for (size_t i = n; i-- > 0;) {
		service_drain(svcs[i], o->drain_s);
		service_stop(svcs[i], SERVICE_STOP_CLEAN);
	}
	log_stats(svcs, n, true);
	for (size_t i = 0; i < n; i++)
		if (service_verdict(svcs[i]) != 0)
			status = SERVICE_EXIT_FAILURE;
	return status;
}

void service_status_db(struct service_status *out, bool failed, bool db_connected,
                       const char *last_error)
{
	out->state = failed                             ? SERVICE_FAILED
	             : (!db_connected && last_error[0]) ? SERVICE_DEGRADED
	                                                : SERVICE_RUNNING;
	snprintf(out->last_error, sizeof(out->last_error), "%s", last_error);
}

int service_main(const struct service_ops *ops, const struct config *cfg)
{
	struct service *s = NULL;
	char err[1024] = "";
	signals_install(); /* before create: a slow discovery at the start is cancelled by them */
	int rc = service_create(&s, ops, cfg, err, sizeof(err));
	if (rc) {
		if (err[0])
			log_error("%s", err);
		return rc == -EINVAL ? SERVICE_EXIT_USAGE : SERVICE_EXIT_FAILURE;
	}
	struct service_host_options o = {
	    .name = ops->name,
	    .duration_s = config_is_set(cfg, "duration") ? config_double(cfg, "duration") : -1,
	    .stats_interval_s = config_double(cfg, "stats-interval"),
	};
	int status = service_host_run(&s, 1, &o);
	service_destroy(s);
	return status;
}
