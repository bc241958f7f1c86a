/* The access policy: the operator's rules file, the signed document the NA issues from it,
 * and the one decision function every enforcement point calls (first matching rule wins,
 * otherwise the default). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gm/policy.h"
#include "gm/sigdoc.h"
#include "gm/util.h"
#include "core_internal.h"

/* docs/access-policy.md shows it; dev up installs it; tests/test_policy.c checks its decisions. */
const char gm_policy_seed_example[] = "# The seed's four agents and the demo's services: deny what is not listed.\n"
                                     "default deny\n"
                                     "allow role:supervisor capability *\n"
                                     "deny  role:crm capability finance.*\n"
                                     "allow role:crm capability crm.*,support.*\n"
                                     "allow role:finance capability finance.*,repo.summary\n"
                                     "allow role:support capability support.*,crm.lookup\n"
                                     "allow role:service:* capability llm.*,repo.*\n"
                                     "allow role:supervisor port *\n"
                                     "deny  role:support port billing\n"
                                     "allow * port capability,chat\n"
                                     "deny  role:crm peer role:finance\n"
                                     "allow * peer *\n"
                                     "deny  role:crm relay role:finance\n"
                                     "allow * relay *   # everyone else forwards for everyone\n";

static const char *const kind_names[GM_POLICY_KINDS] = {"capability", "port", "peer", "relay"};

const char *gm_policy_kind_name(gm_policy_kind k)
{
    return (unsigned)k < GM_POLICY_KINDS ? kind_names[k] : "?";
}

int gm_policy_kind_parse(const char *name)
{
    for (int i = 0; i < GM_POLICY_KINDS; i++)
        if (name && !strcmp(name, kind_names[i]))
            return i;
    return -1;
}

static int name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == ':' || c == '.' ||
           c == '_' || c == '-';
}

/* A role, capability or port name, or a pattern: "*" alone, or a name then '*' after '.', ':' or '-'. */
static int pattern_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > GM_POLICY_NAME_MAX)
        return 0;
    if (!strcmp(s, "*"))
        return 1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '*')
            return i == n - 1 && i > 0 && (s[i - 1] == '.' || s[i - 1] == ':' || s[i - 1] == '-');
        if (!name_char(s[i]))
            return 0;
    }
    return 1;
}

int gm_policy_match(const char *pattern, const char *name)
{
    size_t n = strlen(pattern);
    if (!strcmp(pattern, "*"))
        return 1;
    if (n > 0 && pattern[n - 1] == '*')
        return strncmp(pattern, name, n - 1) == 0 && name[n - 1] != '\0';
    return strcmp(pattern, name) == 0;
}

/* ---- the rules file ---- */

/* Split "a,b,c" into a JSON array of valid patterns; NULL with err set. */
static json_t *name_list(const char *word, const char *what, size_t line, gm_error *err)
{
    json_t *arr = json_array();
    const char *p = word;
    while (arr) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        char one[GM_POLICY_NAME_MAX + 1];
        if (n == 0 || n > GM_POLICY_NAME_MAX) {
            gm_error_set(err, GM_EFORMAT, "line %zu: empty or too long %s in '%.64s'", line, what, word);
            break;
        }
        memcpy(one, p, n);
        one[n] = '\0';
        if (!pattern_valid(one)) {
            gm_error_set(err, GM_EFORMAT,
                         "line %zu: bad %s '%.64s' (letters, digits, ':', '.', '_', '-', and '*' only at the end "
                         "after '.', ':' or '-', or alone)",
                         line, what, one);
            break;
        }
        if (json_array_size(arr) >= GM_POLICY_MAX_NAMES) {
            gm_error_set(err, GM_EFORMAT, "line %zu: more than %d %ss in one rule", line, GM_POLICY_MAX_NAMES, what);
            break;
        }
        json_array_append_new(arr, json_string(one));
        if (!comma)
            return arr;
        p = comma + 1;
    }
    json_decref(arr);
    if (!arr)
        gm_error_set(err, GM_ENOMEM, "out of memory");
    return NULL;
}

/* Up to 5 whitespace-separated words of line (modified in place); returns how many, 6 if more. */
static int split_words(char *s, char *w[5])
{
    int n = 0;
    char *save = NULL;
    for (char *t = strtok_r(s, " \t\r", &save); t; t = strtok_r(NULL, " \t\r", &save)) {
        if (n == 5)
            return 6;
        w[n++] = t;
    }
    return n;
}

static int parse_line(char *s, size_t line, json_t *rules, int *dflt, gm_error *err)
{
    char *hash = strchr(s, '#');
    if (hash)
        *hash = '\0';
    char *w[5];
    int n = split_words(s, w);
    if (n == 0)
        return 0;
    if (!strcmp(w[0], "default")) {
        if (n != 2 || (strcmp(w[1], "allow") && strcmp(w[1], "deny")))
            return gm_error_set(err, GM_EFORMAT, "line %zu: write 'default allow' or 'default deny'", line);
        if (*dflt >= 0)
            return gm_error_set(err, GM_EFORMAT, "line %zu: a second 'default' line", line);
        *dflt = !strcmp(w[1], "allow");
        return 0;
    }
    if (strcmp(w[0], "allow") && strcmp(w[0], "deny"))
        return gm_error_set(err, GM_EFORMAT, "line %zu: a rule starts with 'allow', 'deny' or 'default', not '%.32s'",
                            line, w[0]);
    if (n != 4)
        return gm_error_set(err, GM_EFORMAT, "line %zu: a rule is 'allow|deny ROLES KIND NAMES' (4 words, got %d)",
                            line, n > 5 ? 6 : n);
    int kind = gm_policy_kind_parse(w[2]);
    if (kind < 0)
        return gm_error_set(err, GM_EFORMAT, "line %zu: unknown kind '%.32s' (capability, port, peer or relay)", line,
                            w[2]);
    if (json_array_size(rules) >= GM_POLICY_MAX_RULES)
        return gm_error_set(err, GM_ETOOBIG, "line %zu: more than %d rules", line, GM_POLICY_MAX_RULES);
    json_t *roles = name_list(w[1], "role", line, err);
    if (!roles)
        return err ? err->code : GM_EFORMAT;
    json_t *names = name_list(w[3], kind == GM_POLICY_PEER || kind == GM_POLICY_RELAY ? "role" : w[2], line, err);
    if (!names) {
        json_decref(roles);
        return err ? err->code : GM_EFORMAT;
    }
    json_array_append_new(rules, json_pack("{s:s,s:o,s:s,s:o}", "effect", w[0], "roles", roles, "kind", w[2],
                                           "match", names));
    return 0;
}

int gm_policy_rules_parse(const char *text, size_t len, json_t **out, gm_error *err)
{
    *out = NULL;
    if (len > GM_POLICY_MAX_BYTES)
        return gm_error_set(err, GM_ETOOBIG, "rules file larger than %d bytes", GM_POLICY_MAX_BYTES);
    if (memchr(text, '\0', len))
        return gm_error_set(err, GM_EFORMAT, "rules file contains a NUL byte");
    json_t *rules = json_array();
    int dflt = -1, rc = 0;
    size_t line = 0;
    const char *p = text, *end = text + len;
    while (rules && rc == 0 && p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        line++;
        char *copy = malloc(n + 1);
        if (!copy) {
            rc = gm_error_set(err, GM_ENOMEM, "out of memory");
            break;
        }
        memcpy(copy, p, n);
        copy[n] = '\0';
        rc = parse_line(copy, line, rules, &dflt, err);
        free(copy);
        p += n + (nl ? 1 : 0);
    }
    if (!rules)
        return gm_error_set(err, GM_ENOMEM, "out of memory");
    if (rc == 0 && dflt < 0)
        rc = gm_error_set(err, GM_EFORMAT, "line %zu: no 'default allow' or 'default deny' line", line);
    if (rc != 0) {
        json_decref(rules);
        return rc;
    }
    *out = json_pack("{s:s,s:o}", "default", dflt ? "allow" : "deny", "rules", rules);
    return *out ? 0 : gm_error_set(err, GM_ENOMEM, "out of memory");
}

char *gm_policy_rule_text(const json_t *rule)
{
    gm_buf b = {0};
    gm_buf_printf(&b, "%s ", json_string_value(json_object_get(rule, "effect")));
    const char *keys[2] = {"roles", "match"};
    for (int k = 0; k < 2; k++) {
        const json_t *arr = json_object_get(rule, keys[k]);
        for (size_t i = 0; i < json_array_size(arr); i++)
            gm_buf_printf(&b, "%s%s", i ? "," : "", json_string_value(json_array_get(arr, i)));
        if (k == 0)
            gm_buf_printf(&b, " %s ", json_string_value(json_object_get(rule, "kind")));
    }
    if (b.oom) {
        gm_buf_free(&b);
        return NULL;
    }
    return b.p;
}

/* ---- the signed document ---- */

/* A normalized copy of one rule, or NULL with err set. */
static json_t *norm_rule(const json_t *r, size_t i, gm_error *err)
{
    const char *effect, *kind;
    const json_t *roles = json_object_get(r, "roles"), *match = json_object_get(r, "match");
    if (!json_is_object(r) || json_object_size(r) != 4) {
        gm_error_set(err, GM_EFORMAT, "rule %zu must be an object of effect, roles, kind and match", i + 1);
        return NULL;
    }
    if (gm_json_get_string(r, "effect", &effect, err) || gm_json_get_string(r, "kind", &kind, err)) {
        gm_error_prefix(err, "rule %zu", i + 1);
        return NULL;
    }
    if (strcmp(effect, "allow") && strcmp(effect, "deny")) {
        gm_error_set(err, GM_EFORMAT, "rule %zu: \"effect\" must be allow or deny", i + 1);
        return NULL;
    }
    if (gm_policy_kind_parse(kind) < 0) {
        gm_error_set(err, GM_EFORMAT, "rule %zu: unknown \"kind\" (capability, port, peer or relay)", i + 1);
        return NULL;
    }
    const json_t *lists[2] = {roles, match};
    for (int k = 0; k < 2; k++) {
        const json_t *a = lists[k];
        if (!json_is_array(a) || json_array_size(a) == 0 || json_array_size(a) > GM_POLICY_MAX_NAMES) {
            gm_error_set(err, GM_EFORMAT, "rule %zu: \"%s\" must be an array of 1..%d names", i + 1,
                         k ? "match" : "roles", GM_POLICY_MAX_NAMES);
            return NULL;
        }
        for (size_t j = 0; j < json_array_size(a); j++) {
            const char *s = json_string_value(json_array_get(a, j));
            if (!s || !pattern_valid(s)) {
                gm_error_set(err, GM_EFORMAT, "rule %zu: \"%s\"[%zu] is not a valid name or pattern", i + 1,
                             k ? "match" : "roles", j);
                return NULL;
            }
        }
    }
    return json_pack("{s:s,s:O,s:s,s:O}", "effect", effect, "roles", roles, "kind", kind, "match", match);
}

static int normalize(const json_t *src, gm_policy *p, gm_error *err)
{
    static const char *const members[] = {"policy_id", "sequence", "issued_at", "issuer",
                                          "default",   "rules",    "signatures"};
    const char *id, *issuer, *dflt;
    int rc;
    if (!json_is_object(src))
        return gm_error_set(err, GM_EFORMAT, "access policy must be a JSON object");
    for (size_t i = 0; i < sizeof members / sizeof members[0]; i++)
        if (!json_object_get(src, members[i]))
            return gm_error_set(err, GM_EFORMAT, "access policy: missing \"%s\"", members[i]);
    if (json_object_size(src) != sizeof members / sizeof members[0])
        return gm_error_set(err, GM_EFORMAT, "access policy: unknown members (only policy_id, sequence, issued_at, "
                                             "issuer, default, rules, signatures)");
    if ((rc = gm_json_get_string(src, "policy_id", &id, err)) || (rc = gm_json_get_string(src, "issuer", &issuer, err)) ||
        (rc = gm_json_get_string(src, "default", &dflt, err)))
        return gm_error_prefix(err, "access policy");
    if (!gm_uuid_valid(id))
        return gm_error_set(err, GM_EFORMAT, "access policy: \"policy_id\" must be a UUID");
    if (strcmp(dflt, "allow") && strcmp(dflt, "deny"))
        return gm_error_set(err, GM_EFORMAT, "access policy: \"default\" must be allow or deny");
    const json_t *seq = json_object_get(src, "sequence"), *rules = json_object_get(src, "rules");
    if (!json_is_integer(seq) || json_integer_value(seq) < 0)
        return gm_error_set(err, GM_EFORMAT, "access policy: \"sequence\" must be a non-negative integer");
    if (!json_is_array(rules) || json_array_size(rules) > GM_POLICY_MAX_RULES)
        return gm_error_set(err, GM_EFORMAT, "access policy: \"rules\" must be an array of at most %d rules",
                            GM_POLICY_MAX_RULES);
    json_t *doc = json_pack("{s:s,s:O,s:O,s:s,s:s,s:[],s:o}", "policy_id", id, "sequence", seq, "issued_at",
                            json_object_get(src, "issued_at"), "issuer", issuer, "default", dflt, "rules",
                            "signatures", json_deep_copy(json_object_get(src, "signatures")));
    if (!doc)
        return gm_error_set(err, GM_ENOMEM, "out of memory");
    p->doc = doc;
    if ((rc = gm_json_norm_time(doc, "issued_at", &p->issued_at, err)) || (rc = gm_sigdoc_check_shape(doc, err)))
        return gm_error_prefix(err, "access policy");
    json_t *out = json_object_get(doc, "rules");
    for (size_t i = 0; i < json_array_size(rules); i++) {
        json_t *r = norm_rule(json_array_get(rules, i), i, err);
        if (!r)
            return gm_error_prefix(err, "access policy");
        json_array_append_new(out, r);
    }
    snprintf(p->policy_id, sizeof p->policy_id, "%s", id);
    p->sequence = (uint64_t)json_integer_value(seq);
    p->issuer = json_string_value(json_object_get(doc, "issuer"));
    p->default_allow = !strcmp(dflt, "allow");
    p->n_rules = json_array_size(out);
    return 0;
}

int gm_policy_from_json(const json_t *doc, gm_policy *p, gm_error *err)
{
    memset(p, 0, sizeof *p);
    int rc = normalize(doc, p, err);
    if (rc != 0)
        gm_policy_free(p);
    return rc;
}

int gm_policy_parse(const char *text, size_t len, gm_policy *p, gm_error *err)
{
    json_error_t je;
    memset(p, 0, sizeof *p);
    if (len > GM_POLICY_MAX_BYTES)
        return gm_error_set(err, GM_ETOOBIG, "access policy larger than %d bytes", GM_POLICY_MAX_BYTES);
    json_t *src = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!src)
        return gm_error_set(err, GM_EFORMAT, "access policy is not valid JSON (line %d: %s)", je.line, je.text);
    int rc = gm_policy_from_json(src, p, err);
    json_decref(src);
    return rc;
}

int gm_policy_issue(gm_policy *p, const gm_signer *na, uint64_t sequence, const json_t *body, gm_time issued_at,
                    gm_error *err)
{
    char id[37], ia[GM_TIME_STRLEN];
    gm_uuid4(id);
    gm_time_format(&issued_at, ia);
    const json_t *dflt = json_object_get(body, "default"), *rules = json_object_get(body, "rules");
    json_t *src = json_pack("{s:s,s:I,s:s,s:s,s:O,s:O,s:[]}", "policy_id", id, "sequence", (json_int_t)sequence,
                            "issued_at", ia, "issuer", na->key_id, "default", dflt, "rules", rules, "signatures");
    if (!src)
        return gm_error_set(err, GM_EINVAL, "cannot build the access policy (needs \"default\" and \"rules\")");
    /* normalize first so that the signed bytes are exactly what a parser will see */
    gm_policy tmp;
    int rc = gm_policy_from_json(src, &tmp, err);
    json_decref(src);
    if (rc != 0)
        return rc;
    if ((rc = gm_sigdoc_sign(tmp.doc, na, err)) != 0) {
        gm_policy_free(&tmp);
        return rc;
    }
    *p = tmp;
    return 0;
}

int gm_policy_issue_default(gm_policy *p, const gm_signer *na, gm_time issued_at, gm_error *err)
{
    json_t *body = json_pack("{s:s,s:[]}", "default", "allow", "rules");
    int rc = body ? gm_policy_issue(p, na, 0, body, issued_at, err) : gm_error_set(err, GM_ENOMEM, "out of memory");
    json_decref(body);
    return rc;
}

int gm_policy_verify(const gm_policy *p, const uint8_t na_pk[GM_PK_LEN], gm_error *err)
{
    int rc = gm_sigdoc_verify_any(p->doc, na_pk, err);
    if (rc != 0)
        gm_error_prefix(err, "access policy %llu is not signed by this network's NA", (unsigned long long)p->sequence);
    return rc;
}

/* 1 if some pattern of arr matches some of names. */
static int any_match(const json_t *arr, const char *const *names, size_t n)
{
    for (size_t i = 0; i < json_array_size(arr); i++)
        for (size_t j = 0; j < n; j++)
            if (names[j] && gm_policy_match(json_string_value(json_array_get(arr, i)), names[j]))
                return 1;
    return 0;
}

int gm_policy_decide(const gm_policy *p, gm_policy_kind kind, const char *const *roles, size_t n,
                     const char *const *objects, size_t n_objects, gm_policy_decision *d)
{
    memset(d, 0, sizeof *d);
    if (!p) {
        d->allowed = 1;
        snprintf(d->text, sizeof d->text, "no access policy held");
        return 1;
    }
    d->sequence = p->sequence;
    const json_t *rules = json_object_get(p->doc, "rules");
    for (size_t i = 0; i < json_array_size(rules); i++) {
        const json_t *r = json_array_get(rules, i);
        if (gm_policy_kind_parse(json_string_value(json_object_get(r, "kind"))) != (int)kind ||
            !any_match(json_object_get(r, "roles"), roles, n) ||
            !any_match(json_object_get(r, "match"), objects, n_objects))
            continue;
        d->allowed = !strcmp(json_string_value(json_object_get(r, "effect")), "allow");
        d->rule = (int)i + 1;
        char *t = gm_policy_rule_text(r);
        snprintf(d->text, sizeof d->text, "rule %zu: %s", i + 1, t ? t : "");
        free(t);
        return d->allowed;
    }
    d->allowed = p->default_allow;
    snprintf(d->text, sizeof d->text, "default %s", p->default_allow ? "allow" : "deny");
    return d->allowed;
}

char *gm_policy_dump(const gm_policy *p, int pretty)
{
    return json_dumps(p->doc, pretty ? JSON_INDENT(2) | JSON_SORT_KEYS : JSON_COMPACT | JSON_SORT_KEYS);
}

void gm_policy_free(gm_policy *p)
{
    if (p && p->doc)
        json_decref(p->doc);
    if (p)
        memset(p, 0, sizeof *p);
}
