/* JSON strings. */
#include <stdio.h>

#include "json.h"

void json_write_str(const char *s, json_emit_fn emit, void *arg)
{
	char esc[8];

	emit(arg, "\"", 1);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			emit(arg, esc, 2);
		} else if (c < 0x20) {
			snprintf(esc, sizeof(esc), "\\u%04x", c);
			emit(arg, esc, 6);
		} else {
			emit(arg, s, 1);
		}
	}
	emit(arg, "\"", 1);
}
