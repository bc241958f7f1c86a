/* Canonical JSON: the exact bytes that are signed (formats.md "Canonical JSON"). */
#ifndef GM_CANON_H
#define GM_CANON_H

#include <jansson.h>
#include <stddef.h>

#include "gm/error.h"

/* Same for an object, leaving out its top-level "signatures" member (what is signed). */
int gm_canon_dump_unsigned(const json_t *obj, char **out, size_t *len, gm_error *err) GM_MUST_CHECK;

#endif
