#include "core/timeutil.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

double time_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double time_mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double time_backoff_s(int attempt, double min_s, double max_s, double u)
{
	double d = min_s;
	for (int i = 0; i < attempt && d < max_s; i++)
		d *= 2;
	if (d > max_s)
		d = max_s;
	return d * (0.5 + u);
}

static int digits(const char *s, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[i]))
			return -EINVAL;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

static int days_in_month(int y, int m)
{
	static const int d[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return 29;
	return d[m - 1];
}

int time_parse_rfc3339(const char *s, double *epoch)
{
	int Y, M, D, h, m, sec;
	if (strlen(s) < 20 || digits(s, 4, &Y) || s[4] != '-' || digits(s + 5, 2, &M) || s[7] != '-' ||
	    digits(s + 8, 2, &D) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
	    digits(s + 11, 2, &h) || s[13] != ':' || digits(s + 14, 2, &m) || s[16] != ':' ||
	    digits(s + 17, 2, &sec))
		return -EINVAL;
	if (Y < 1 || M < 1 || M > 12 || D < 1 || D > days_in_month(Y, M) || h > 23 || m > 59 ||
	    sec > 60)
		return -EINVAL;
	const char *p = s + 19;
	double frac = 0;
	if (*p == '.') {
		p++;
		double scale = 0.1;
		if (!isdigit((unsigned char)*p))
			return -EINVAL;
		while (isdigit((unsigned char)*p)) {
			frac += (*p - '0') * scale;
			scale /= 10;
			p++;
		}
	}
	int off = 0;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int oh, om;
		if (digits(p + 1, 2, &oh) || p[3] != ':' || digits(p + 4, 2, &om) || oh > 23 || om > 59)
			return -EINVAL;
		off = (oh * 60 + om) * 60 * (*p == '-' ? -1 : 1);
		p += 6;
	} else {
		return -EINVAL;
	}
	if (*p != '\0')
		return -EINVAL;
	/* days since 1970-01-01 in the proleptic Gregorian calendar (the days-from-civil
	 * arithmetic: years counted from March, so a leap day ends its year), as timegm() gives
	 * without its time-zone machinery on every sample; second 60 runs into the next minute */
	int y = Y - (M <= 2);
	int era = y / 400; /* y >= 0 here */
	int yoe = y - era * 400;
	int doy = (153 * (M + (M > 2 ? -3 : 9)) + 2) / 5 + D - 1;
	long long days = (long long)era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
	*epoch = (double)(days * 86400 + h * 3600 + m * 60 + sec) - off + frac;
	return 0;
}

int time_format_rfc3339(double epoch, char *buf, size_t len)
{
	double whole = floor(epoch);
	long ms = lround((epoch - whole) * 1000.0);
	if (ms >= 1000) {
		whole += 1;
		ms -= 1000;
	}
	time_t t = (time_t)whole;
	struct tm tm;
	gmtime_r(&t, &tm);
	int n = snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
			 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
	return n > 0 && (size_t)n < len ? 0 : -ENOSPC;
}
