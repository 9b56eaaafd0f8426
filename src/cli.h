/*
 * cli: the command line of gpuhealth (man/gpuhealth.1; the shared CLI contract, cli.md, lives
 * beside the repository): the modes, the one option table they share, help text written from
 * that table, and loading a mode's configuration from the command line, the environment and
 * the config file.
 */
#ifndef GPUHEALTH_CLI_H
#define GPUHEALTH_CLI_H

#include <stddef.h>
#include <stdio.h>

#include "core/config.h"
#include "core/exitcode.h" /* CLI_EXIT_* */

enum cli_mode {
	CLI_TUI = 1u << 0,
	CLI_DAEMON = 1u << 1,
	CLI_MOCK = 1u << 2,
	CLI_COLLECTOR = 1u << 3,
	CLI_SINK = 1u << 4,
	CLI_SCORER = 1u << 5,
	CLI_STATUS = 1u << 6,
	CLI_DB = 1u << 7,
	CLI_API = 1u << 8,
	CLI_KAFKA = 1u << 9, /* kafka init */
};

const struct config_option *cli_options(size_t *n);
const char *cli_mode_name(enum cli_mode mode);
/* One line describing what a mode does. */
const char *cli_mode_summary(enum cli_mode mode);

/* What cli_load decided. */
enum cli_action { CLI_RUN, CLI_SHOW_HELP, CLI_SHOW_VERSION, CLI_USAGE_ERROR, CLI_FAILURE };

/*
 * Picks the mode from argv (a subcommand word, `--daemon`, or the console when none is given),
 * then loads its configuration: flags, then the environment (through getenv_fn), then the
 * config file from --config / GPUHEALTH_CONFIG. stdout_is_tty decides the default mode as the
 * contract says. On CLI_RUN *cfg_out is owned by the caller (config_destroy). On a usage error
 * or failure, err holds the message.
 */
enum cli_action cli_load(int argc, char **argv, const char *(*getenv_fn)(const char *),
                         int stdout_is_tty, enum cli_mode *mode_out, struct config **cfg_out,
                         char *err, size_t errlen);

/* Writes the help of a mode (the global help for CLI_TUI lists the subcommands too). */
void cli_print_help(FILE *out, enum cli_mode mode);
void cli_print_version(FILE *out);

/*
 * Logs one warning per secret given as a flag, where every user of the host can read it
 * (ps, /proc/PID/cmdline): a password in --db (any form pg_conninfo_has_password knows), a
 * secret librdkafka property in -X (password, secret, ssl.key.pem, sasl.oauthbearer.config),
 * a user:password in --webhook or --target. Each names the alternatives that keep it off the
 * command line.
 * Returns how many it logged. Settings from the environment or the config file are quiet.
 */
int cli_warn_exposed_secrets(const struct config *cfg);

#endif
