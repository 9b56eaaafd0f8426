#include "api/api_cmd.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "api/api.h"
#include "core/config.h"
#include "core/log.h"
#include "core/service.h"

static int api_svc_create(void **impl, const struct config *cfg, char *err, size_t errlen)
{
	struct api_params p = {
	    .listen = config_str(cfg, "listen"),
	    .conninfo = config_str(cfg, "db"),
	    .per_client = (unsigned)config_int(cfg, "max-client-connections"),
	};
	struct api *api = NULL;
	int rc = api_create(&api, &p, err, errlen);
	*impl = api;
	return rc;
}

SERVICE_FORWARD_STOP(api_svc_stop, api_stop, api_stop)
SERVICE_FORWARD(api_svc_destroy, api_destroy)

static int api_svc_start(void *impl, char *err, size_t errlen)
{
	struct api *api = impl;
	int rc = api_start(api, err, errlen);
	if (rc)
		return rc;
	log_info("api: listening on http://%s (GET /api/v1/gpus, /api/v1/fleet/summary, "
	         "/api/v1/alerts, /healthz, /metrics)",
	         api_address(api));
	return 0;
}

static int api_svc_stats_line(void *impl, bool final, double uptime_s, char *buf, size_t len)
{
	(void)uptime_s;
	struct api_stats st;
	api_stats(impl, &st);
	return snprintf(buf, len,
	                "%s requests=%" PRIu64 " 2xx=%" PRIu64 " 4xx=%" PRIu64 " 5xx=%" PRIu64
	                " db_errors=%" PRIu64 " db_connections=%u",
	                final ? "api: stopped;" : "api:", st.requests, st.responses_2xx,
	                st.responses_4xx, st.responses_5xx, st.db_errors, st.db_connections);
}

static int api_svc_notify_text(void *impl, bool ready, char *buf, size_t len)
{
	struct api *api = impl;
	if (ready)
		return snprintf(buf, len, "serving on %s", api_address(api));
	struct api_stats st;
	api_stats(api, &st);
	return snprintf(buf, len,
	                "serving on %s: %" PRIu64 " requests, %" PRIu64 " database errors",
	                api_address(api), st.requests, st.db_errors);
}

const struct service_ops api_service_ops = {
    SERVICE_OPS_BASE("api", api_svc),
    .create = api_svc_create,
    .stats_line = api_svc_stats_line,
    .notify_text = api_svc_notify_text,
};
