#include "core/signals.h"

#include <signal.h>
#include <string.h>

static volatile sig_atomic_t g_stop;
static volatile sig_atomic_t g_hup;

static void on_stop(int sig) { g_stop = sig; }
static void on_hup(int sig)
{
	(void)sig;
	g_hup = 1;
}

void signals_install(void)
{
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

bool signals_stop_requested(void) { return g_stop != 0; }
int signals_stop_signal(void) { return (int)g_stop; }

bool signals_take_hup(void)
{
	if (!g_hup)
		return false;
	g_hup = 0;
	return true;
}
