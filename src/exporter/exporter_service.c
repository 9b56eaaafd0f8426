/* The exporter as a service (struct service_ops over a struct exporter): what
 * `gpuhealth mock-dcgm` and the console's pipeline run. */
#include "exporter/exporter.h"

#include <stdbool.h>
#include <stdio.h>

#include "core/service.h"

SERVICE_FORWARD_STOP(exporter_svc_stop, exporter_stop, exporter_stop)
SERVICE_FORWARD(exporter_svc_destroy, exporter_destroy)

/* impl: a struct exporter (exporter_create, nvml_exporter_create: the pipeline's) */
static int exporter_svc_start(void *impl, char *err, size_t errlen)
{
	return exporter_start(impl, err, errlen);
}

static int exporter_svc_stats_line(void *impl, bool final, double uptime_s, char *buf, size_t len)
{
	(void)uptime_s;
	struct exporter_stats st;
	exporter_get_stats(impl, &st);
	if (final)
		return snprintf(buf, len,
		                "mock-dcgm: stopped at simulated time %.0f s after %llu snapshots; "
		                "%llu requests (%llu /metrics, %llu gzip, %llu not found, %llu not "
		                "allowed)",
		                st.sim_time, (unsigned long long)st.renders,
		                (unsigned long long)st.requests, (unsigned long long)st.metrics,
		                (unsigned long long)st.gzip, (unsigned long long)st.not_found,
		                (unsigned long long)st.not_allowed);
	return snprintf(
	    buf, len,
	    "mock-dcgm: simulated time %.0f s, %llu snapshots (last %.1f ms, %zu bytes, "
	    "%zu gzip); %llu requests (%llu /metrics, %llu gzip)",
	    st.sim_time, (unsigned long long)st.renders, st.last_render_ms, st.body_bytes,
	    st.gzip_bytes, (unsigned long long)st.requests, (unsigned long long)st.metrics,
	    (unsigned long long)st.gzip);
}

const struct service_ops exporter_service_ops = {
    SERVICE_OPS_BASE("mock-dcgm", exporter_svc),
    .stats_line = exporter_svc_stats_line,
};
