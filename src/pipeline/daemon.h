/* daemon: `gpuhealth --daemon` (also `gpuhealth daemon`): the console's embedded pipeline
 * (pipeline.h) with no screen. Logs to stderr with levels and a one-line summary every
 * --stats-interval; SIGINT/SIGTERM stop it cleanly, SIGHUP re-reads the targets, --duration
 * stops it after S seconds. */
#ifndef GPUHEALTH_DAEMON_H
#define GPUHEALTH_DAEMON_H

struct service_ops;

/* The daemon as a service (service_main): its exit status is 0 after a clean stop, 1 when the
 * pipeline failed or lost something. */
extern const struct service_ops daemon_service_ops;

#endif
