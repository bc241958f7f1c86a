/* Fuzz target for the parsers of the local API version 2 (docs/local-api.md) and of
 * `agent run --exec`. The first input byte picks:
 *   0  one request line: node_api_check_request at versions 1 and 2, then by its op
 *      node_api_hello_version, node_agents_parse_provide or node_agents_parse_answer;
 *   1  a command line for gm_argv_split.
 * Invariants (abort() on violation): an error response always carries a code of the fixed
 * list; at version 2 an accepted request always has an id; hello picks a version it was
 * offered; a parsed answer has exactly one of output and error; split words carry no control
 * characters, and quoting them back (each in '...') splits to the same words. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gm/argv.h"
#include "node_internal.h"

#define FAIL(why)                                                                  \
    do {                                                                           \
        fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, why); \
        abort();                                                                   \
    } while (0)

static void check_error(const json_t *resp)
{
    static const char *const codes[] = {"invalid_request", "unknown_op", "unsupported_version", "hello_required",
                                        "too_big", "no_route", "not_found", "conflict", "no_provider",
                                        "provider_error", "rejected", "deadline_exceeded", "unavailable", "denied",
                                        "busy", "internal"};
    const char *code = json_string_value(json_object_get(json_object_get(resp, "error"), "code"));
    if (!code || json_is_true(json_object_get(resp, "ok")))
        FAIL("error response without a code");
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
        if (!strcmp(code, codes[i]))
            return;
    FAIL("error code outside the documented list");
}

static void request_line(const uint8_t *data, size_t size)
{
    json_t *req = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
    for (int version = 1; version <= NODE_API_VERSION; version++) {
        const char *op;
        const json_t *id;
        json_t *err = node_api_check_request(req, version, &op, &id);
        if (err) {
            check_error(err);
            json_decref(err);
            continue;
        }
        if (!op || (version >= 2 && !id))
            FAIL("accepted a request without op, or without id at version 2");
        char why[300];
        if (!strcmp(op, "hello")) {
            int v = node_api_hello_version(req, why, sizeof why);
            if (v < -1 || v > NODE_API_VERSION)
                FAIL("hello picked a version out of range");
            if (v > 0) {
                int offered = 0;
                const json_t *vs = json_object_get(req, "versions");
                for (size_t i = 0; i < json_array_size(vs); i++)
                    offered |= json_integer_value(json_array_get(vs, i)) == v;
                if (!offered)
                    FAIL("hello picked a version that was not offered");
            }
        } else if (!strcmp(op, "provide")) {
            node_provide_args a;
            if (node_agents_parse_provide(req, &a, why, sizeof why) == 0) {
                if (!a.cap[0] || a.ttl_s < 10 || a.ttl_s > 3600)
                    FAIL("provide accepted without a capability or with a bad TTL");
                json_decref(a.metadata);
            }
        } else if (!strcmp(op, "answer")) {
            node_answer_args a;
            if (node_agents_parse_answer(req, &a, why, sizeof why) == 0 && (!a.output == !a.code[0]))
                FAIL("answer with both or neither of output and error");
        }
    }
    json_decref(req);
}

static void command_line(const uint8_t *data, size_t size)
{
    char *line = malloc(size + 1);
    if (!line)
        return;
    memcpy(line, data, size);
    line[size] = '\0';
    char **argv = NULL;
    size_t argc = 0;
    gm_error err = {0};
    if (gm_argv_split(line, &argv, &argc, &err) != 0) {
        if (argv || argc || !err.msg[0])
            FAIL("a refused command line left words or no message");
        free(line);
        return;
    }
    if (argc < 1 || argc > GM_ARGV_MAX || argv[argc])
        FAIL("word count out of range or vector not NULL-terminated");
    /* Quote every word back: ' inside becomes '\'' */
    size_t cap = 4 * size + 3 * argc + 16, n = 0;
    char *back = malloc(cap);
    for (size_t i = 0; back && i < argc; i++) {
        back[n++] = '\'';
        for (const char *p = argv[i]; *p; p++) {
            if ((unsigned char)*p < 0x20 || *p == 0x7f)
                FAIL("a word holds a control character");
            if (*p == '\'') {
                memcpy(back + n, "'\\''", 4);
                n += 4;
            } else {
                back[n++] = *p;
            }
        }
        back[n++] = '\'';
        back[n++] = ' ';
    }
    if (back) {
        back[n] = '\0';
        char **again = NULL;
        size_t argc2 = 0;
        if (n <= GM_ARGV_LINE_MAX) {
            if (gm_argv_split(back, &again, &argc2, &err) != 0 || argc2 != argc)
                FAIL("quoted words do not split back");
            for (size_t i = 0; i < argc; i++)
                if (strcmp(argv[i], again[i]) != 0)
                    FAIL("quoted word changed");
            gm_argv_free(again);
        }
        free(back);
    }
    gm_argv_free(argv);
    free(line);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if (data[0] % 2 == 0)
        request_line(data + 1, size - 1);
    else
        command_line(data + 1, size - 1);
    return 0;
}
