/* Writing JSON strings: the one escaper lotad and lotactl share. Pure: the caller says
 * where the bytes go. */
#ifndef LOTA_JSON_H
#define LOTA_JSON_H

#include <stddef.h>

typedef void (*json_emit_fn)(void *arg, const char *p, size_t n);

/* s as a quoted JSON string: '"' and '\' escaped, control bytes as \u00XX. */
void json_write_str(const char *s, json_emit_fn emit, void *arg);

#endif
