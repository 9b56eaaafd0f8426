/* The exporter as a service (struct service_ops over a struct exporter): what
 * `gpuhealth mock-dcgm` and the console's pipeline run. */
#include "exporter/exporter.h"

#include <stdbool.h>
#include <stdio.h>

#include "core/service.h"

/* impl: a struct exporter (exporter_create, nvml_exporter_create: the pipeline's) */
static int exporter_svc_start(void *impl, char *err, size_t errlen)
{
	return exporter_start(impl, err, errlen);
}

static void exporter_svc_stop(void *impl, enum service_stop how)
{
	(void)how;
	exporter_stop(impl);
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

static void exporter_svc_destroy(void *impl)
{
	exporter_destroy(impl);
}

const struct service_ops exporter_service_ops = {
    .name = "mock-dcgm",
    .start = exporter_svc_start,
    .stats_line = exporter_svc_stats_line,
    .stop = exporter_svc_stop,
    .destroy = exporter_svc_destroy,
};
