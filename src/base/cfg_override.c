/* --set overrides applied to the parsed YAML document (see mg_cfg_override.h). Edits go
 * through mg_cfg_edit so that the strict reader's bookkeeping covers the new nodes. */
#include "mg_cfg_override.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "mg_error.h"

typedef struct {
    const char *assignment;
    char path[256];
    const char *value;
} override_job;

static yaml_node_t *node_at(yaml_document_t *doc, int id) { return yaml_document_get_node(doc, id); }

static int add_scalar(yaml_document_t *doc, const char *text, const override_job *job)
{
    int id = yaml_document_add_scalar(doc, NULL, (yaml_char_t *)text, (int)strlen(text), YAML_PLAIN_SCALAR_STYLE);
    MG_CHECK(id > 0, job->assignment, NULL, "libyaml could not add a node");
    mg_cfg_mark_override(node_at(doc, id));
    return id;
}

/* The value node id under key in mapping map_id; 0 when absent. *pair_out gets the pair. */
static int mapping_find(yaml_document_t *doc, int map_id, const char *key, yaml_node_pair_t **pair_out)
{
    yaml_node_t *m = node_at(doc, map_id);
    for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
        yaml_node_t *k = node_at(doc, p->key);
        if (k->type == YAML_SCALAR_NODE && !strcmp((const char *)k->data.scalar.value, key)) {
            *pair_out = p;
            return p->value;
        }
    }
    *pair_out = NULL;
    return 0;
}

/* Replaces the node that *slot refers to with a new scalar carrying the old position. */
static void replace_with_scalar(yaml_document_t *doc, int *slot, const override_job *job)
{
    yaml_node_t *old = node_at(doc, *slot);
    if (old->type != YAML_SCALAR_NODE)
        MG_FAIL(job->assignment, "--set replaces single values only",
                "'%s' is a %s in the config", job->path, old->type == YAML_MAPPING_NODE ? "mapping" : "list");
    /* the new value is marked as coming from --set, so errors about it say so */
    *slot = add_scalar(doc, job->value, job);
}

static void apply(yaml_document_t *doc, void *ctx)
{
    const override_job *job = ctx;
    char path[256];
    snprintf(path, sizeof path, "%s", job->path);
    int current = 1; /* the root mapping */
    char *save = NULL;
    char *segment = strtok_r(path, ".", &save);
    while (segment) {
        char *next = strtok_r(NULL, ".", &save);
        char *bracket = strchr(segment, '[');
        int index = -1;
        if (bracket) {
            char *end;
            index = (int)strtol(bracket + 1, &end, 10);
            MG_CHECK(*end == ']' && end[1] == 0 && index >= 0, job->assignment, "write key[i], e.g. layers[2]",
                     "bad list index in '%s'", segment);
            *bracket = 0;
        }
        yaml_node_t *here = node_at(doc, current);
        MG_CHECK(here->type == YAML_MAPPING_NODE, job->assignment, "check the key path",
                 "cannot look up '%s': its parent is not a mapping", segment);
        yaml_node_pair_t *pair;
        int child = mapping_find(doc, current, segment, &pair);
        bool last = !next && index < 0;
        if (!child) {
            MG_CHECK(index < 0, job->assignment, "check the key path", "no list '%s' in the config", segment);
            int key = add_scalar(doc, segment, job);
            int value = last ? add_scalar(doc, job->value, job)
                             : yaml_document_add_mapping(doc, NULL, YAML_BLOCK_MAPPING_STYLE);
            if (value > 0)
                mg_cfg_mark_override(node_at(doc, value));
            MG_CHECK(value > 0 && yaml_document_append_mapping_pair(doc, current, key, value), job->assignment, NULL,
                     "libyaml could not add a key");
            current = value;
        } else if (last) {
            replace_with_scalar(doc, &pair->value, job);
            return;
        } else {
            current = child;
        }
        if (index >= 0) {
            yaml_node_t *seq = node_at(doc, current);
            MG_CHECK(seq->type == YAML_SEQUENCE_NODE, job->assignment, "check the key path", "'%s' is not a list",
                     segment);
            int len = (int)(seq->data.sequence.items.top - seq->data.sequence.items.start);
            MG_CHECK(index < len, job->assignment, "check the key path", "'%s' has %d items, no index %d", segment,
                     len, index);
            if (!next) {
                replace_with_scalar(doc, &seq->data.sequence.items.start[index], job);
                return;
            }
            current = seq->data.sequence.items.start[index];
        }
        segment = next;
    }
}

void mg_cfg_override(mg_cfg *cfg, const char *assignment)
{
    override_job job = {.assignment = assignment};
    const char *eq = strchr(assignment, '=');
    MG_CHECK(eq && eq > assignment && eq[1], assignment, "write --set key.path=value", "malformed override");
    size_t key_len = (size_t)(eq - assignment);
    MG_CHECK(key_len < sizeof job.path, assignment, NULL, "key path too long");
    memcpy(job.path, assignment, key_len);
    job.path[key_len] = 0;
    MG_CHECK(job.path[0] != '.' && job.path[key_len - 1] != '.' && !strstr(job.path, ".."), assignment,
             "write --set key.path=value", "empty key in the path");
    job.value = eq + 1;
    mg_cfg_edit(cfg, apply, &job);
}
