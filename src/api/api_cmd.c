#include "api/api_cmd.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "api/api.h"
#include "cli.h"
#include "core/config.h"
#include "core/log.h"
#include "core/notify.h"
#include "core/signals.h"
#include "core/timeutil.h"

static void log_stats(const struct api_stats *st, const char *prefix)
{
	log_info("%s requests=%" PRIu64 " 2xx=%" PRIu64 " 4xx=%" PRIu64 " 5xx=%" PRIu64
	         " db_errors=%" PRIu64 " db_connections=%u",
	         prefix, st->requests, st->responses_2xx, st->responses_4xx, st->responses_5xx,
	         st->db_errors, st->db_connections);
}

int api_cmd_run(struct config *cfg)
{
	log_set_timestamps(1);
	signals_install();
	struct api_params p = {
	    .listen = config_str(cfg, "listen"),
	    .conninfo = config_str(cfg, "db"),
	    .per_client = (unsigned)config_int(cfg, "max-client-connections"),
	};
	struct api *api = NULL;
	char err[512];
	int rc = api_create(&api, &p, err, sizeof(err));
	if (rc) {
		log_error("%s", err);
		return rc == -EINVAL ? CLI_EXIT_USAGE : CLI_EXIT_FAILURE;
	}
	rc = api_start(api, err, sizeof(err));
	if (rc) {
		log_error("%s", err);
		api_destroy(api);
		return rc == -EINVAL ? CLI_EXIT_USAGE : CLI_EXIT_FAILURE;
	}
	log_info("api: listening on http://%s (GET /api/v1/gpus, /api/v1/fleet/summary, "
	         "/api/v1/alerts, /healthz, /metrics)",
	         api_address(api));
	notify_status(true, "serving on %s", api_address(api));
	double start = time_mono(), last = start;
	double duration = config_is_set(cfg, "duration") ? config_double(cfg, "duration") : -1;
	double every = config_double(cfg, "stats-interval");
	struct api_stats st;
	for (;;) {
		struct timespec ts = {0, 100 * 1000000L};
		nanosleep(&ts, NULL);
		double now = time_mono();
		notify_watchdog_tick(now);
		if (signals_stop_requested()) {
			log_info("api: signal %d, stopping", signals_stop_signal());
			break;
		}
		if (duration >= 0 && now - start >= duration)
			break;
		if (every > 0 && now - last >= every) {
			api_stats(api, &st);
			log_stats(&st, "api:");
			notify_status(false,
			              "serving on %s: %" PRIu64 " requests, %" PRIu64
			              " database errors",
			              api_address(api), st.requests, st.db_errors);
			last = now;
		}
	}
	notify_send("STOPPING=1");
	api_stop(api);
	api_stats(api, &st);
	log_stats(&st, "api: stopped;");
	api_destroy(api);
	return CLI_EXIT_OK;
}
