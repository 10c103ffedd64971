/* Hexadecimal digits, both ways. Pure: libc only. */
#ifndef LOTA_HEX_H
#define LOTA_HEX_H

#include <stddef.h>

/* The value of one hex digit (either case), or -1. */
int hex_value(int c);
/* n bytes of in as 2n lower-case digits and a NUL in out (2n + 1 bytes). */
void hex_encode(const unsigned char *in, size_t n, char *out);
/* The n bytes that the 2n hex digits at in stand for, into out: 0, or -1 at a non-digit. */
int hex_decode(const char *in, unsigned char *out, size_t n);

#endif
