#include "core/signals.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t g_stop;
static volatile sig_atomic_t g_hup;
static volatile sig_atomic_t g_hup_stops; /* the console: SIGHUP is a stop */
/* self-pipe: a handler writes a byte so that signals_wait() returns at once, whichever
 * thread the signal was delivered to; -1 until signals_install() made it */
static int g_wake[2] = {-1, -1};

static void wake(void)
{
	if (g_wake[1] >= 0) {
		int e = errno;
		ssize_t r = write(g_wake[1], "", 1); /* full pipe: a wake-up is pending anyway */
		(void)r;
		errno = e;
	}
}

static void on_stop(int sig)
{
	if (!g_stop) /* the first reason stays: a SIGTERM after a hangup is still a hangup */
		g_stop = sig;
	wake();
}
static void on_hup(int sig)
{
	if (g_hup_stops) {
		on_stop(sig);
		return;
	}
	g_hup = 1;
	wake();
}

void signals_install(void)
{
	if (g_wake[0] < 0 && pipe2(g_wake, O_NONBLOCK | O_CLOEXEC) != 0)
		g_wake[0] = g_wake[1] = -1; /* signals_wait() sleeps its whole time instead */
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_stop;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sa.sa_handler = on_hup;
	sigaction(SIGHUP, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
}

bool signals_stop_requested(void)
{
	return g_stop != 0;
}
int signals_stop_signal(void)
{
	return (int)g_stop;
}

void signals_hup_stops(void)
{
	g_hup_stops = 1;
}

void signals_request_stop(int sig)
{
	on_stop(sig);
}

int signals_wake_fd(void)
{
	return g_wake[0];
}

bool signals_take_hup(void)
{
	if (!g_hup)
		return false;
	g_hup = 0;
	return true;
}

void signals_wait(double max_s)
{
	if (!(max_s > 0))
		return;
	if (g_wake[0] < 0) {
		struct timespec ts = {(time_t)max_s, (long)((max_s - (double)(time_t)max_s) * 1e9)};
		nanosleep(&ts, NULL);
		return;
	}
	struct pollfd p = {.fd = g_wake[0], .events = POLLIN};
	int ms = max_s > 86400 ? 86400000 : (int)(max_s * 1000 + 0.5);
	if (poll(&p, 1, ms) > 0) {
		char drain[64];
		while (read(g_wake[0], drain, sizeof(drain)) > 0) {
		}
	}
}
