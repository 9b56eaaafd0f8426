/* timeutil: wall-clock helpers and RFC 3339 text (the event contract's "time"). */
#ifndef GPUHEALTH_TIMEUTIL_H
#define GPUHEALTH_TIMEUTIL_H

#include <stddef.h>

/* Seconds since the epoch, real time, with sub-second precision. */
double time_now(void);
/* Seconds on a monotonic clock (for intervals and timeouts). */
double time_mono(void);
/* The wait before retry number attempt (0, 1, ...): min_s doubled each attempt up to max_s,
 * times 0.5 + u for u in [0, 1] (jitter, so services that failed together do not retry in
 * step). */
double time_backoff_s(int attempt, double min_s, double max_s, double u);
/* Parses "YYYY-MM-DDTHH:MM:SS[.fraction](Z|+hh:mm|-hh:mm)" ('T' or ' '),
 * years 0001 to 9999 (whether a time is plausible is the caller's rule). Returns 0 or -EINVAL. */
int time_parse_rfc3339(const char *text, double *epoch);
/* Writes UTC with milliseconds, "2026-11-28T12:00:10.000Z". Returns 0 or -ENOSPC. */
int time_format_rfc3339(double epoch, char *buf, size_t len);

#endif
