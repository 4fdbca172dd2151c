/* Strict YAML configuration (libyaml document API).
 *
 * A node handle remembers its file position and its key path ("generator.layers[2].kernel"),
 * so every error names the file, line, column and key. Every key that is read is marked;
 * mg_cfg_check_unused then rejects any key nobody asked for, so a typo is an error, not a
 * silently ignored setting. */
#ifndef MG_CFG_H
#define MG_CFG_H

#include <stdbool.h>

typedef struct mg_cfg mg_cfg;

typedef struct {
    mg_cfg *cfg;
    int id;          /* libyaml node id; 0 when the key was absent */
    char path[112];  /* key path for messages */
} mg_cfg_node;

typedef enum { MG_CFG_ABSENT, MG_CFG_SCALAR, MG_CFG_SEQUENCE, MG_CFG_MAPPING } mg_cfg_type;

/* Loads a file (errors: unreadable file, YAML syntax with line and column, empty file). */
mg_cfg *mg_cfg_load_file(const char *path);
/* Parses text; name stands for the file in messages. */
mg_cfg *mg_cfg_parse(const char *text, const char *name);
void mg_cfg_free(mg_cfg *cfg);
const char *mg_cfg_file(const mg_cfg *cfg);

mg_cfg_node mg_cfg_root(mg_cfg *cfg);
mg_cfg_type mg_cfg_type_of(mg_cfg_node n);
static inline bool mg_cfg_present(mg_cfg_node n) { return n.id != 0; }

/* A key of a mapping (absent if missing); marks the key as read. */
mg_cfg_node mg_cfg_get(mg_cfg_node map, const char *key);
/* The same, but a missing key is an error. */
mg_cfg_node mg_cfg_require(mg_cfg_node map, const char *key);
/* Requires map to be a mapping (absent is allowed: an empty mapping). */
void mg_cfg_expect_mapping(mg_cfg_node map);

int mg_cfg_seq_len(mg_cfg_node seq);           /* error if not a sequence */
mg_cfg_node mg_cfg_seq_at(mg_cfg_node seq, int i);

/* Scalars of a node, with type and range checked. */
long mg_cfg_as_int(mg_cfg_node n, long lo, long hi);
double mg_cfg_as_real(mg_cfg_node n, double lo, double hi);
bool mg_cfg_as_bool(mg_cfg_node n);
const char *mg_cfg_as_string(mg_cfg_node n);
/* Index of the scalar in names[0..count); error lists the choices. */
int mg_cfg_as_choice(mg_cfg_node n, const char *const *names, int count);

/* Keyed versions: an absent key gives def. */
long mg_cfg_int(mg_cfg_node map, const char *key, long def, long lo, long hi);
double mg_cfg_real(mg_cfg_node map, const char *key, double def, double lo, double hi);
bool mg_cfg_bool(mg_cfg_node map, const char *key, bool def);
const char *mg_cfg_string(mg_cfg_node map, const char *key, const char *def);
int mg_cfg_choice(mg_cfg_node map, const char *key, const char *const *names, int count, int def);
/* Keyed, required. */
long mg_cfg_int_req(mg_cfg_node map, const char *key, long lo, long hi);

/* "file:line:col (key path)" of a node, for messages made elsewhere. */
const char *mg_cfg_where(mg_cfg_node n, char *buf, int size);
/* Fails naming the node's file, line, column and key path. */
void mg_cfg_fail(mg_cfg_node n, const char *hint, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 3, 4)));
/* Fails when map holds key although the chosen kind has no use for it: "key 'KEY' does not
 * apply to WHAT 'KIND'" (what: "schedule kind"), with hint. */
void mg_cfg_reject_key(mg_cfg_node map, const char *key, const char *what, const char *kind, const char *hint);

/* Hands libyaml's document to fn, which may read it or change it (--set overrides,
 * src/base/cfg_override.c; writing the resolved config). Afterwards the read flags cover any
 * nodes fn added. Node handles taken before stay valid (libyaml never renumbers nodes). */
struct yaml_document_s;
void mg_cfg_edit(mg_cfg *cfg, void (*fn)(struct yaml_document_s *doc, void *ctx), void *ctx);

/* Marks a node added by a --set override, so messages say "--set" instead of a file place. */
struct yaml_node_s;
void mg_cfg_mark_override(struct yaml_node_s *node);

/* Fails on the first key in the document that was never read. */
void mg_cfg_check_unused(mg_cfg *cfg);

#endif
