/* Splitting a command line written by a user ('CMD ARGS') into an argument vector, the way a
 * POSIX shell splits words but with no expansion at all: no variables, globs, redirections or
 * command substitution. Used by `agent run --exec`, so no shell runs unless the user writes one
 * ('sh -c "..."'). */
#ifndef GM_ARGV_H
#define GM_ARGV_H

#include <stddef.h>

#include "gm/error.h"

#define GM_ARGV_MAX 64            /* arguments */
#define GM_ARGV_LINE_MAX 8192     /* bytes of the command line */

/* Words are separated by spaces or tabs. Inside '...' every byte is literal; inside "..." a
 * backslash escapes only " \ $ and `; outside quotes a backslash makes the next byte literal.
 * Refused (GM_EINVAL, naming the problem and its position): an empty command, an unterminated
 * quote, a trailing backslash, a control character (newline included), more than GM_ARGV_MAX
 * words or GM_ARGV_LINE_MAX bytes. *argv_out is a NULL-terminated array (free with
 * gm_argv_free); *argc_out its length. */
int gm_argv_split(const char *line, char ***argv_out, size_t *argc_out, gm_error *err);
void gm_argv_free(char **argv);

#endif
