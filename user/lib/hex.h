/* Hexadecimal digits, both ways. Pure: libc only. */
#ifndef LOTA_HEX_H
#define LOTA_HEX_H

#include <stddef.h>

/* The value of one hex digit (either case), or -1. */
int hex_value(int c);
/* n bytes of in as 2n lower-case digits and a NUL in out (2n + 1 bytes). */
void hex_encode(const unsigned char *in, size_t n, char *out);

#endif
