/* Command-line overrides of a loaded config: `--set train.batch=128`.
 *
 * An override names a key path with dots, and list items with [i]
 * ("generator.layers[2].out=64"), and gives a scalar value as YAML would read it. The
 * value replaces the node at that path in the parsed document (keeping the replaced
 * node's file position, so a later range or type error points at the key it overrides);
 * a missing final key, or missing intermediate mappings, are added. Overriding a list
 * or mapping with a scalar, indexing past a list's end, or walking through a scalar is
 * an error naming the override. The config's strict checks then apply unchanged. */
#ifndef MG_CFG_OVERRIDE_H
#define MG_CFG_OVERRIDE_H

#include "mg_cfg.h"

/* Applies one "key.path=value" assignment to cfg. */
void mg_cfg_override(mg_cfg *cfg, const char *assignment);

#endif
