/*
 * config: table-driven settings shared by every mode of gpuhealth.
 *
 * One table (cli.c) names each setting once: its long option, short option, environment
 * variable, type, default, help text and the modes it applies to. Values come from, in rising
 * precedence: the default, the config file (`key = value`, keys are the long option names),
 * the environment, the command line. The help text and the man page's option list are written
 * from the same table.
 */
#ifndef GPUHEALTH_CONFIG_H
#define GPUHEALTH_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum config_type {
	CONFIG_STR,      /* any text */
	CONFIG_INT,      /* a whole number within [min, max] */
	CONFIG_DOUBLE,   /* a number within [min, max] */
	CONFIG_DURATION, /* seconds, or a number with ms/s/m/h/d; read back as seconds */
	CONFIG_BOOL,     /* a flag: takes no argument on the command line */
	CONFIG_LIST,     /* repeatable text; in the environment, items split on env_sep */
};

enum config_source { CONFIG_SRC_DEFAULT = 0, CONFIG_SRC_FILE, CONFIG_SRC_ENV, CONFIG_SRC_FLAG };

/* A bool whose environment variable counts as true whenever it is set and non-empty
 * (the NO_COLOR convention). */
#define CONFIG_F_ENV_NONEMPTY 0x1u

struct config_option {
	const char *name;  /* long option and config-file key, e.g. "gpus" */
	char short_name;   /* e.g. 'X', or 0 */
	const char *env;   /* environment variable, or NULL */
	enum config_type type;
	const char *def;   /* default as text, or NULL for none */
	const char *arg;   /* metavariable in help, e.g. "N" */
	const char *help;  /* one line */
	unsigned modes;    /* bitmask of the modes that accept it */
	double min, max;   /* range for numbers (ignored when min > max) */
	const char *env_sep; /* CONFIG_LIST: separators of items in the environment variable */
	unsigned flags;
};

struct config;

/* Creates an empty configuration over a table for one mode (a bit of config_option.modes).
 * mode_name is used in messages. The table must outlive the configuration.
 * Returns 0 or -ENOMEM. */
int config_create(struct config **out, const struct config_option *table, size_t n,
		  unsigned mode, const char *mode_name);
void config_destroy(struct config *cfg);

/*
 * Parses argv[0..argc) (no program name). Options may be "--name value", "--name=value",
 * "-X value", "-Xvalue". Non-option words are collected as positional arguments.
 * On a usage error returns -EINVAL and writes a message naming the argument and the fix.
 */
int config_parse_args(struct config *cfg, int argc, char **argv, char *err, size_t errlen);

/* Reads every option's environment variable through getenv_fn (getenv in production). */
int config_load_env(struct config *cfg, const char *(*getenv_fn)(const char *name), char *err,
		    size_t errlen);

/* Limits of the config file: its size, and one line's bytes (the line end not counted). */
#define CONFIG_FILE_MAX_BYTES ((size_t)1 << 20)
#define CONFIG_FILE_MAX_LINE 4096

/* Reads a `key = value` file ('#' comments, blank lines). Keys of other modes are accepted and
 * ignored (one file serves every service); unknown keys are an error naming file and line.
 * The file is read by textfile_read: only a regular file of at most CONFIG_FILE_MAX_BYTES,
 * UTF-8 without NUL bytes, lines of at most CONFIG_FILE_MAX_LINE bytes.
 * Returns 0, or a negative errno (-ENOENT, -EACCES, -EISDIR, -EFBIG, -EINVAL, ...) with a
 * message naming the file (and the line, where there is one). */
int config_load_file(struct config *cfg, const char *path, char *err, size_t errlen);

/* Accessors. Asking for a name that is not in the table, or with the wrong type, aborts: that
 * is a programming error, not a user error. A setting with no value reads as NULL / 0 / false. */
const char *config_str(const struct config *cfg, const char *name);
int64_t config_int(const struct config *cfg, const char *name);
double config_double(const struct config *cfg, const char *name); /* DOUBLE and DURATION */
bool config_bool(const struct config *cfg, const char *name);
size_t config_list_len(const struct config *cfg, const char *name);
const char *config_list_at(const struct config *cfg, const char *name, size_t i);
/* A list's strings as cfg holds them (borrowed, for cfg's lifetime); *n: the list's length. */
const char *const *config_list_items(const struct config *cfg, const char *name, size_t *n);
/* A list's strings (borrowed from cfg) in a new array with room for extra more (at least one
 * slot in all); *n: the list's length. Returns the array (the caller frees it, not the
 * strings) or NULL when out of memory. */
const char **config_list_array(const struct config *cfg, const char *name, size_t extra, size_t *n);
bool config_is_set(const struct config *cfg, const char *name); /* given by the user anywhere */
/* A mode's own default: sets name from text unless the user gave it (flag, env or file).
 * Returns 0, or -EINVAL with a message in err. */
int config_set_default(struct config *cfg, const char *name, const char *text, char *err,
		       size_t errlen);
enum config_source config_source_of(const struct config *cfg, const char *name);

/* How the user gave a setting, for messages: "--listen", "LISTEN_ADDR" or "config key 'listen'"
 * (the option's spelling when it was not given). */
void config_describe(const struct config *cfg, const char *name, char *buf, size_t len);

size_t config_positional_count(const struct config *cfg);
const char *config_positional(const struct config *cfg, size_t i);

/* Parses a duration: "10", "2.5", "500ms", "10s", "5m", "1h", "7d". Returns 0 or -EINVAL. */
int config_parse_duration(const char *text, double *seconds);

#endif
