/* Pieces of lib/agent/llm.c exposed so fuzz/fuzz_llm.c can reach the parsers without files or HTTP. */
#ifndef GM_LLM_INTERNAL_H
#define GM_LLM_INTERNAL_H

#include <stddef.h>

#include "gm/error.h"
#include "gm/http_client.h"
#include "gm/llm.h"

/* gm_llm_config_load with the .env content given as text (name stands for the file in messages). */
int llm_config_load_text(gm_llm_config *cfg, const char *name, const char *text, size_t len,
                         gm_error *err);
/* How gm_llm_chat reads a 2xx answer: choices[0].message.content (null = empty) and
 * finish_reason, key redacted, into *answer (zeroed on failure). */
int llm_parse_answer(const gm_llm_config *cfg, const char *shown_url, const gm_http_resp *resp,
                     gm_llm_answer *answer, gm_error *err);

#endif
