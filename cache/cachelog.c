/* The store's log lines, through the callback the opener gave (none: silent). */
#include <stdarg.h>
#include <stdio.h>

#include "cache-int.h"

void cache_log(struct cache *c, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	if (!c->opts.log)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	c->opts.log(c->opts.log_arg, line);
}
