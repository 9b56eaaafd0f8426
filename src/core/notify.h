/*
 * notify: the service manager's readiness protocol (sd_notify(3)) without libsystemd.
 *
 * When $NOTIFY_SOCKET names an AF_UNIX datagram socket (a path, or an abstract name written
 * with a leading '@'), each call sends one datagram such as "READY=1\nSTATUS=consuming".
 * Without $NOTIFY_SOCKET every call is a no-op that succeeds, so the services run the same
 * under systemd, in a container and from a shell.
 */
#ifndef GPUHEALTH_NOTIFY_H
#define GPUHEALTH_NOTIFY_H

#include <stdbool.h>
#include <stdint.h>

/* Sends state (newline-separated KEY=VALUE lines) to $NOTIFY_SOCKET. Returns 0 (also when
 * there is no socket) or -errno. */
int notify_send(const char *state);

/* Sends to an explicit socket name (path or '@abstract'), for tests and notify_send. */
int notify_send_to(const char *socket_name, const char *state);

/* printf-style STATUS= line; READY=1 is prepended when ready is true. */
int notify_status(bool ready, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The watchdog period asked for by $WATCHDOG_USEC (for this process, $WATCHDOG_PID), in
 * microseconds, or 0 when none. Services ping at half of it. */
uint64_t notify_watchdog_usec(void);

/* Sends WATCHDOG=1 when at least half the watchdog period passed since the last ping
 * (now_s: a monotonic clock in seconds). Cheap to call every loop. */
void notify_watchdog_tick(double now_s);

#endif
