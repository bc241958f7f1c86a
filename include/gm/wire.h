/* The one piece of the peer-link wire formats (lib/net/wire.h, private) that programs use:
 * the UTF-8 check the wire applies to texts it carries. */
#ifndef GM_WIRE_PUBLIC_H
#define GM_WIRE_PUBLIC_H

#include <stddef.h>
#include <stdint.h>

/* 1 if s[0..len) is well-formed UTF-8 without NUL (no overlongs, no surrogates). */
int gm_wire_utf8_valid(const uint8_t *s, size_t len);

#endif
