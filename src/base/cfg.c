/* Strict YAML configuration on libyaml's document API (see mg_cfg.h).
 * The document is loaded whole (configs are small); a per-node "read" flag lets
 * mg_cfg_check_unused find keys that no part of the program asked for. */
#include "mg_cfg.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "mg_error.h"

struct mg_cfg {
    char *file;
    yaml_document_t doc;
    unsigned char *key_read; /* indexed by key node id */
    int n_nodes;
};

static yaml_node_t *node_of(mg_cfg_node n) { return yaml_document_get_node(&n.cfg->doc, n.id); }

const char *mg_cfg_file(const mg_cfg *cfg) { return cfg->file; }

/* Nodes made by --set carry this line number instead of a place in the file. */
#define OVERRIDE_LINE ((size_t)-1)

void mg_cfg_mark_override(yaml_node_t *node)
{
    node->start_mark.line = OVERRIDE_LINE;
    node->end_mark.line = OVERRIDE_LINE;
}

const char *mg_cfg_where(mg_cfg_node n, char *buf, int size)
{
    yaml_node_t *node = n.id ? node_of(n) : NULL;
    if (node && node->start_mark.line == OVERRIDE_LINE)
        snprintf(buf, size, "--set (%s)", n.path[0] ? n.path : "top level");
    else if (node)
        snprintf(buf, size, "%s:%zu:%zu (%s)", n.cfg->file, node->start_mark.line + 1,
                 node->start_mark.column + 1, n.path[0] ? n.path : "top level");
    else
        snprintf(buf, size, "%s (%s)", n.cfg->file, n.path[0] ? n.path : "top level");
    return buf;
}

void mg_cfg_fail(mg_cfg_node n, const char *hint, const char *fmt, ...)
{
    char where[320], body[640];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(body, sizeof body, fmt, ap);
    va_end(ap);
    mg_fatal_at(__FILE__, __LINE__, mg_cfg_where(n, where, sizeof where), hint, "%s", body);
}

void mg_cfg_reject_key(mg_cfg_node map, const char *key, const char *what, const char *kind, const char *hint)
{
    mg_cfg_node n = mg_cfg_get(map, key);
    if (mg_cfg_present(n))
        mg_cfg_fail(n, hint, "key '%s' does not apply to %s '%s'", key, what, kind);
}

static mg_cfg *load(yaml_parser_t *parser, const char *name)
{
    mg_cfg *cfg = mg_alloc(sizeof *cfg, "config");
    cfg->file = mg_strdup(name);
    if (!yaml_parser_load(parser, &cfg->doc))
        MG_FAIL(name, "check the indentation and quoting near that place",
                "YAML syntax error at line %zu, column %zu: %s", parser->problem_mark.line + 1,
                parser->problem_mark.column + 1, parser->problem ? parser->problem : "unknown problem");
    yaml_parser_delete(parser);
    if (!yaml_document_get_root_node(&cfg->doc))
        MG_FAIL(name, "a config is a YAML mapping of sections", "the file is empty");
    cfg->n_nodes = (int)(cfg->doc.nodes.top - cfg->doc.nodes.start);
    cfg->key_read = mg_alloc((size_t)cfg->n_nodes + 1, "config read flags");
    if (mg_cfg_type_of(mg_cfg_root(cfg)) != MG_CFG_MAPPING)
        MG_FAIL(name, "a config is a YAML mapping of sections", "the top level is not a mapping");
    return cfg;
}

mg_cfg *mg_cfg_load_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        MG_FAIL(path, "check the path", "cannot open config file: %s", strerror(errno));
    yaml_parser_t parser;
    MG_CHECK(yaml_parser_initialize(&parser), path, NULL, "libyaml could not initialise a parser");
    yaml_parser_set_input_file(&parser, f);
    mg_cfg *cfg = load(&parser, path);
    fclose(f);
    return cfg;
}

mg_cfg *mg_cfg_parse(const char *text, const char *name)
{
    yaml_parser_t parser;
    MG_CHECK(yaml_parser_initialize(&parser), name, NULL, "libyaml could not initialise a parser");
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, strlen(text));
    return load(&parser, name);
}

void mg_cfg_free(mg_cfg *cfg)
{
    if (!cfg)
        return;
    yaml_document_delete(&cfg->doc);
    mg_free(cfg->key_read);
    mg_free(cfg->file);
    mg_free(cfg);
}

mg_cfg_node mg_cfg_root(mg_cfg *cfg)
{
    mg_cfg_node n = {.cfg = cfg, .id = 1, .path = ""};
    return n;
}

mg_cfg_type mg_cfg_type_of(mg_cfg_node n)
{
    if (!n.id)
        return MG_CFG_ABSENT;
    switch (node_of(n)->type) {
    case YAML_SCALAR_NODE: return MG_CFG_SCALAR;
    case YAML_SEQUENCE_NODE: return MG_CFG_SEQUENCE;
    case YAML_MAPPING_NODE: return MG_CFG_MAPPING;
    default: return MG_CFG_ABSENT;
    }
}

void mg_cfg_expect_mapping(mg_cfg_node map)
{
    if (map.id && mg_cfg_type_of(map) != MG_CFG_MAPPING)
        mg_cfg_fail(map, NULL, "expected a mapping of keys");
}

static const char *scalar_text(mg_cfg_node n) { return (const char *)node_of(n)->data.scalar.value; }

mg_cfg_node mg_cfg_get(mg_cfg_node map, const char *key)
{
    mg_cfg_node child = {.cfg = map.cfg, .id = 0};
    snprintf(child.path, sizeof child.path, "%s%s%s", map.path, map.path[0] ? "." : "", key);
    if (!map.id)
        return child;
    mg_cfg_expect_mapping(map);
    yaml_node_t *m = node_of(map);
    for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(&map.cfg->doc, p->key);
        if (k->type == YAML_SCALAR_NODE && strcmp((const char *)k->data.scalar.value, key) == 0) {
            map.cfg->key_read[p->key] = 1;
            child.id = p->value;
            return child;
        }
    }
    return child;
}

mg_cfg_node mg_cfg_require(mg_cfg_node map, const char *key)
{
    mg_cfg_node child = mg_cfg_get(map, key);
    if (!child.id)
        mg_cfg_fail(map, NULL, "missing required key '%s'", key);
    return child;
}

int mg_cfg_seq_len(mg_cfg_node seq)
{
    if (mg_cfg_type_of(seq) != MG_CFG_SEQUENCE)
        mg_cfg_fail(seq, "write a YAML list, e.g. [1, 2] or one '- item' per line", "expected a list");
    yaml_node_t *s = node_of(seq);
    return (int)(s->data.sequence.items.top - s->data.sequence.items.start);
}

mg_cfg_node mg_cfg_seq_at(mg_cfg_node seq, int i)
{
    int len = mg_cfg_seq_len(seq);
    MG_CHECK(i >= 0 && i < len, seq.path, NULL, "list index %d out of range (length %d)", i, len);
    mg_cfg_node item = {.cfg = seq.cfg, .id = node_of(seq)->data.sequence.items.start[i]};
    snprintf(item.path, sizeof item.path, "%s[%d]", seq.path, i);
    return item;
}

static void expect_scalar(mg_cfg_node n, const char *what)
{
    if (mg_cfg_type_of(n) != MG_CFG_SCALAR)
        mg_cfg_fail(n, NULL, "expected %s, found a %s", what,
                    mg_cfg_type_of(n) == MG_CFG_SEQUENCE ? "list" : "mapping");
}

long mg_cfg_as_int(mg_cfg_node n, long lo, long hi)
{
    expect_scalar(n, "an integer");
    const char *s = scalar_text(n);
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end)
        mg_cfg_fail(n, NULL, "expected an integer, found '%s'", s);
    if (v < lo || v > hi)
        mg_cfg_fail(n, NULL, "value %ld out of range [%ld, %ld]", v, lo, hi);
    return v;
}

double mg_cfg_as_real(mg_cfg_node n, double lo, double hi)
{
    expect_scalar(n, "a number");
    const char *s = scalar_text(n);
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v))
        mg_cfg_fail(n, NULL, "expected a finite number, found '%s'", s);
    if (v < lo || v > hi)
        mg_cfg_fail(n, NULL, "value %g out of range [%g, %g]", v, lo, hi);
    return v;
}

bool mg_cfg_as_bool(mg_cfg_node n)
{
    expect_scalar(n, "true or false");
    const char *s = scalar_text(n);
    if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "yes"))
        return true;
    if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "no"))
        return false;
    mg_cfg_fail(n, NULL, "expected true or false, found '%s'", s);
}

const char *mg_cfg_as_string(mg_cfg_node n)
{
    expect_scalar(n, "a string");
    return scalar_text(n);
}

int mg_cfg_as_choice(mg_cfg_node n, const char *const *names, int count)
{
    const char *s = mg_cfg_as_string(n);
    char choices[512] = "";
    for (int i = 0; i < count; i++) {
        if (!strcmp(s, names[i]))
            return i;
        size_t used = strlen(choices);
        snprintf(choices + used, sizeof choices - used, "%s%s", i ? ", " : "", names[i]);
    }
    char hint[560];
    snprintf(hint, sizeof hint, "one of: %s", choices);
    mg_cfg_fail(n, hint, "unknown value '%s'", s);
}

long mg_cfg_int(mg_cfg_node map, const char *key, long def, long lo, long hi)
{
    mg_cfg_node n = mg_cfg_get(map, key);
    return n.id ? mg_cfg_as_int(n, lo, hi) : def;
}

long mg_cfg_int_req(mg_cfg_node map, const char *key, long lo, long hi)
{
    return mg_cfg_as_int(mg_cfg_require(map, key), lo, hi);
}

double mg_cfg_real(mg_cfg_node map, const char *key, double def, double lo, double hi)
{
    mg_cfg_node n = mg_cfg_get(map, key);
    return n.id ? mg_cfg_as_real(n, lo, hi) : def;
}

bool mg_cfg_bool(mg_cfg_node map, const char *key, bool def)
{
    mg_cfg_node n = mg_cfg_get(map, key);
    return n.id ? mg_cfg_as_bool(n) : def;
}

const char *mg_cfg_string(mg_cfg_node map, const char *key, const char *def)
{
    mg_cfg_node n = mg_cfg_get(map, key);
    return n.id ? mg_cfg_as_string(n) : def;
}

int mg_cfg_choice(mg_cfg_node map, const char *key, const char *const *names, int count, int def)
{
    mg_cfg_node n = mg_cfg_get(map, key);
    if (!n.id) {
        if (def < 0)
            mg_cfg_fail(map, NULL, "missing required key '%s'", key);
        return def;
    }
    return mg_cfg_as_choice(n, names, count);
}

void mg_cfg_edit(mg_cfg *cfg, void (*fn)(yaml_document_t *doc, void *ctx), void *ctx)
{
    fn(&cfg->doc, ctx);
    int n_nodes = (int)(cfg->doc.nodes.top - cfg->doc.nodes.start);
    if (n_nodes > cfg->n_nodes) {
        unsigned char *grown = mg_alloc((size_t)n_nodes + 1, "config read flags");
        memcpy(grown, cfg->key_read, (size_t)cfg->n_nodes + 1);
        mg_free(cfg->key_read);
        cfg->key_read = grown;
        cfg->n_nodes = n_nodes;
    }
}

void mg_cfg_check_unused(mg_cfg *cfg)
{
    for (yaml_node_t *m = cfg->doc.nodes.start; m < cfg->doc.nodes.top; m++) {
        if (m->type != YAML_MAPPING_NODE)
            continue;
        for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
            if (cfg->key_read[p->key])
                continue;
            yaml_node_t *k = yaml_document_get_node(&cfg->doc, p->key);
            const char *name = k->type == YAML_SCALAR_NODE ? (const char *)k->data.scalar.value : "?";
            if (k->start_mark.line == OVERRIDE_LINE)
                MG_FAIL(cfg->file, "check the key path given to --set", "unknown key '%s' added by --set", name);
            MG_FAIL(cfg->file, "check the spelling; docs/training.md and docs/design.md list the keys",
                    "unknown key '%s' at line %zu, column %zu", name, k->start_mark.line + 1,
                    k->start_mark.column + 1);
        }
    }
}
