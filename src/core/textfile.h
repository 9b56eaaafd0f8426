/*
 * textfile: reads a small text file a user named (the config file, a targets file) with
 * bounds, so that a wrong path is a clear error and never a hang: only a regular file (a
 * directory, a device such as /dev/zero, a FIFO or a socket is refused before any read), at
 * most max_bytes, UTF-8 without NUL bytes, no line longer than max_line bytes (the line end
 * not counted). Errors name the file, and the line where there is one.
 */
#ifndef GPUHEALTH_TEXTFILE_H
#define GPUHEALTH_TEXTFILE_H

#include <stddef.h>

/*
 * Reads path into *out (NUL-terminated, *len bytes without the terminator; the caller owns it
 * and frees it with free()). Returns 0, or a negative errno with a message in err that starts
 * with the file ("'PATH': ..." or "PATH:LINE: ...", so that "config file " can precede it): the
 * open's or read's error (-ENOENT, -EACCES, ...), -EISDIR (a directory), -EINVAL (not a regular
 * file; or "FILE:LINE: ..." for a NUL byte, invalid UTF-8, a line over max_line), -EFBIG (over
 * max_bytes), -ENOMEM. On error *out is NULL.
 */
int textfile_read(const char *path, size_t max_bytes, size_t max_line, char **out, size_t *len,
                  char *err, size_t errlen);

/*
 * Checks text[0..len) as textfile_read does (NUL bytes, UTF-8, line lengths); name is used in
 * the message ("NAME:LINE: ..."). Returns 0 or -EINVAL.
 */
int textfile_check(const char *text, size_t len, size_t max_line, const char *name, char *err,
                   size_t errlen);

#endif
