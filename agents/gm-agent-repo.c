/* gm-agent-repo: serves repo.summary, describing a repository from a JSON fixture (name,
 * description, highlights, files), so the demo and the tests have a deterministic, offline
 * knowledge source. Input {"question"}; output {"repo","summary","source","files"}. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_cli.h"
#include "gm/util.h"

#define FIXTURE_MAX (256 * 1024)
#define SUMMARY_MAX 4096

struct repo {
    json_t *fixture;
    char name[128];
};

static void repo_free(struct repo *r)
{
    json_decref(r->fixture);
    memset(r, 0, sizeof *r);
}

static int repo_load(struct repo *r, const char *path, gm_error *err)
{
    char *text;
    size_t len;
    json_error_t je;
    memset(r, 0, sizeof *r);
    int rc = gm_file_read(path, FIXTURE_MAX, &text, &len, err);
    if (rc != 0)
        return gm_error_prefix(err, "repo fixture");
    r->fixture = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    free(text);
    if (!r->fixture)
        return gm_error_set(err, GM_EFORMAT, "repo fixture %s is not JSON (line %d: %s)", path, je.line, je.text);
    const char *name = json_string_value(json_object_get(r->fixture, "name"));
    const char *desc = json_string_value(json_object_get(r->fixture, "description"));
    if (!json_is_object(r->fixture) || !name || !desc) {
        repo_free(r);
        return gm_error_set(err, GM_EFORMAT, "repo fixture %s needs string \"name\" and \"description\"", path);
    }
    snprintf(r->name, sizeof r->name, "%s", name);
    return 0;
}

static int repo_handle(void *user, const gm_agent_call_in *in, json_t **output, gm_error *err)
{
    struct repo *r = user;
    const json_t *input = in->req->input;
    if (!json_is_object(input))
        return gm_error_set(err, GM_EINVAL, "repo.summary expects an object input, e.g. {\"question\": \"...\"}");
    char summary[SUMMARY_MAX];
    size_t n = (size_t)snprintf(summary, sizeof summary, "%s",
                                json_string_value(json_object_get(r->fixture, "description")));
    const json_t *hl = json_object_get(r->fixture, "highlights");
    for (size_t i = 0; i < json_array_size(hl) && n < sizeof summary; i++) {
        const char *h = json_string_value(json_array_get(hl, i));
        if (h)
            n += (size_t)snprintf(summary + n, sizeof summary - n, "%s%s", i == 0 ? " Key points: " : "; ", h);
    }
    if (n < sizeof summary && json_array_size(hl) > 0)
        snprintf(summary + n, sizeof summary - n, ".");
    json_t *files = json_array();
    const json_t *fs = json_object_get(r->fixture, "files");
    for (size_t i = 0; i < json_array_size(fs) && i < 32; i++) {
        const char *p = json_string_value(json_object_get(json_array_get(fs, i), "path"));
        if (p)
            json_array_append_new(files, json_string(p));
    }
    const char *src = json_string_value(json_object_get(r->fixture, "source"));
    snprintf(in->detail, GM_AGENT_DETAIL_MAX + 1, "summarized %.100s from %.200s", r->name, src ? src : "its fixture");
    *output = json_pack("{s:s,s:s,s:s?,s:o}", "repo", r->name, "summary", summary, "source", src, "files", files);
    if (!*output)
        return gm_error_set(err, GM_EFORMAT, "repo fixture text is not UTF-8");
    return 0;
}

int main(int argc, char **argv)
{
    struct agent_cli c = {
        .log_format = -1,
        .log_level = GM_LOG_INFO,
        .program = "gm-agent-repo",
        .capability = "repo.summary",
        .any_capability = 1,
        .usage = "usage: gm-agent-repo --dir D --agent-id ID --fixture FILE [--capability CAP] [options]\n"
                 "Serves repo.summary from a JSON fixture {\"name\",\"description\",\"highlights\",\"files\"}\n"
                 "(see examples/repo-a.json) through the node running at D. With --capability CAP it\n"
                 "serves the same summary under another name (a stand-in provider, e.g. finance.report).\n"
                 "  --fixture FILE     the repository description (required)\n" AGENT_CLI_COMMON_USAGE,
    };
    static const struct option opts[] = {{"fixture", required_argument, NULL, 'f'}, AGENT_CLI_COMMON_OPTIONS,
                                         {NULL, 0, NULL, 0}};
    const char *fixture = NULL;
    int rc = agent_cli_parse(&c, argc, argv, opts, agent_cli_store_string, &fixture);
    if (rc >= 0)
        return rc;
    if (!fixture)
        return agent_cli_usage(&c, "--fixture FILE is required (see examples/repo-a.json)");
    struct repo r;
    gm_error err = {0};
    if (repo_load(&r, fixture, &err) != 0)
        return agent_cli_fail(&c, "fixture", &err);
    rc = agent_cli_serve(&c, repo_handle, &r, &err) != 0 ? agent_cli_fail(&c, "serving", &err) : 0;
    repo_free(&r);
    return rc;
}
