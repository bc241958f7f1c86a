/* Splitting a user's command line into words, shell-style quoting without any expansion
 * (gm/argv.h). */
#include <stdlib.h>
#include <string.h>

#include "gm/argv.h"

void gm_argv_free(char **argv)
{
    if (!argv)
        return;
    for (char **p = argv; *p; p++)
        free(*p);
    free(argv);
}

int gm_argv_split(const char *line, char ***argv_out, size_t *argc_out, gm_error *err)
{
    *argv_out = NULL;
    *argc_out = 0;
    size_t len = strlen(line);
    if (len > GM_ARGV_LINE_MAX)
        return gm_error_set(err, GM_EINVAL, "the command is %zu bytes long; at most %d", len, GM_ARGV_LINE_MAX);
    char **argv = calloc(GM_ARGV_MAX + 1, sizeof *argv);
    char *word = malloc(len + 1); /* a word is never longer than the line */
    size_t argc = 0, wl = 0;
    int in_word = 0, rc = 0;
    if (!argv || !word) {
        rc = gm_error_set(err, GM_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i <= len; i++) {
        unsigned char ch = (unsigned char)line[i];
        if (ch == '\0' || ch == ' ' || ch == '\t') {
            if (in_word) {
                if (argc == GM_ARGV_MAX) {
                    rc = gm_error_set(err, GM_EINVAL, "the command has more than %d words", GM_ARGV_MAX);
                    goto out;
                }
                word[wl] = '\0';
                if (!(argv[argc] = strdup(word))) {
                    rc = gm_error_set(err, GM_ENOMEM, "out of memory");
                    goto out;
                }
                argc++;
                wl = 0;
                in_word = 0;
            }
            continue;
        }
        if (ch < 0x20 || ch == 0x7f) {
            rc = gm_error_set(err, GM_EINVAL, "control character 0x%02x at byte %zu of the command", ch, i + 1);
            goto out;
        }
        in_word = 1;
        if (ch == '\\') {
            if (line[i + 1] == '\0') {
                rc = gm_error_set(err, GM_EINVAL, "the command ends with a backslash");
                goto out;
            }
            i++;
            if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f) {
                rc = gm_error_set(err, GM_EINVAL, "control character at byte %zu of the command", i + 1);
                goto out;
            }
            word[wl++] = line[i];
        } else if (ch == '\'' || ch == '"') {
            size_t start = i;
            for (i++;; i++) {
                unsigned char q = (unsigned char)line[i];
                if (q == '\0') {
                    rc = gm_error_set(err, GM_EINVAL, "the quote %c at byte %zu of the command is not closed", ch,
                                      start + 1);
                    goto out;
                }
                if (q < 0x20 || q == 0x7f) {
                    rc = gm_error_set(err, GM_EINVAL, "control character 0x%02x at byte %zu of the command", q, i + 1);
                    goto out;
                }
                if (q == ch)
                    break;
                if (ch == '"' && q == '\\' && strchr("\"\\$`", line[i + 1]) && line[i + 1] != '\0')
                    q = (unsigned char)line[++i];
                word[wl++] = (char)q;
            }
        } else {
            word[wl++] = (char)ch;
        }
    }
    if (argc == 0)
        rc = gm_error_set(err, GM_EINVAL, "the command is empty");
out:
    free(word);
    if (rc != 0) {
        gm_argv_free(argv);
        return rc;
    }
    *argv_out = argv;
    *argc_out = argc;
    return 0;
}
