/* Logging to stderr with a timestamp and level; one write(2) per line so lines from
 * several threads never interleave. Messages carry bytes from clients (keys, targets):
 * every control byte, backslash and byte that is not valid UTF-8 is written escaped, so
 * no input can forge a line or a terminal sequence. */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

/* Process-wide, like the counters: read and set with atomics from any thread. */
static int current_level = LOG_INFO;
static const char *const names[] = {"error", "warn", "info", "debug"};

void log_set_level(enum log_level level)
{
	__atomic_store_n(&current_level, level, __ATOMIC_RELAXED);
}

enum log_level log_get_level(void)
{
	return (enum log_level)__atomic_load_n(&current_level, __ATOMIC_RELAXED);
}

const char *log_level_name(enum log_level level)
{
	return level <= LOG_DEBUG ? names[level] : "?";
}

int log_level_parse(const char *s, enum log_level *out)
{
	for (int i = 0; i <= LOG_DEBUG; i++) {
		if (strcasecmp(s, names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -EINVAL;
}

/* Length of the valid, printable UTF-8 sequence at p (1 to 4 bytes), or 0. C1 controls
 * (U+0080..U+009F), overlong forms and surrogates count as invalid. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
	size_t len = p[0] >= 0xf0 ? 4 : p[0] >= 0xe0 ? 3 : 2;
	uint32_t cp;

	if (p[0] < 0xc2 || p[0] > 0xf4 || len > n)
		return 0;
	cp = p[0] & (0x3f >> (len - 1));
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if (cp < 0xa0 || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return len;
}

size_t log_escape(const char *in, size_t n, char *out, size_t cap)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)in;
	size_t o = 0;

	for (size_t i = 0; i < n && o + 4 < cap;) {
		size_t u = p[i] >= 0x80 ? utf8_len(p + i, n - i) : 0;

		if (u) {
			if (o + u >= cap)
				break;
			memcpy(out + o, p + i, u);
			o += u;
			i += u;
			continue;
		}
		if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\') {
			out[o++] = (char)p[i++];
			continue;
		}
		out[o++] = '\\';
		if (p[i] == '\\' || p[i] == '\n' || p[i] == '\r' || p[i] == '\t') {
			out[o++] = p[i] == '\\' ? '\\' : p[i] == '\n' ? 'n' : p[i] == '\r' ? 'r' : 't';
		} else {
			out[o++] = 'x';
			out[o++] = hex[p[i] >> 4];
			out[o++] = hex[p[i] & 15];
		}
		i++;
	}
	out[o] = '\0';
	return o;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	char line[LOG_LINE_MAX], msg[LOG_LINE_MAX];
	struct timespec ts;
	struct tm tm;
	va_list ap;
	size_t n;
	int r;

	if (level > log_get_level())
		return;
	va_start(ap, fmt);
	r = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (r < 0)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	n += (size_t)snprintf(line + n, sizeof(line) - n, ".%03ldZ %-5s lotad: ", ts.tv_nsec / 1000000,
			      log_level_name(level));
	n += log_escape(msg, (size_t)r < sizeof(msg) ? (size_t)r : sizeof(msg) - 1, line + n,
			sizeof(line) - n - 1);
	line[n++] = '\n';
	if (write(STDERR_FILENO, line, n) < 0)
		return;
}

bool log_every_take(struct log_every *e, uint64_t now_ms, unsigned every_ms, unsigned long *held)
{
	uint64_t next = __atomic_load_n(&e->next_ms, __ATOMIC_RELAXED);

	if (now_ms < next ||
	    !__atomic_compare_exchange_n(&e->next_ms, &next, now_ms + every_ms, false,
					 __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
		__atomic_add_fetch(&e->held, 1, __ATOMIC_RELAXED);
		return false;
	}
	*held = __atomic_exchange_n(&e->held, 0, __ATOMIC_RELAXED);
	return true;
}

void log_msg_every(struct log_every *e, unsigned every_ms, enum log_level level, const char *fmt,
		   ...)
{
	char msg[LOG_LINE_MAX];
	struct timespec ts;
	unsigned long held;
	va_list ap;

	if (level > log_get_level())
		return;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	if (!log_every_take(e, (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000,
			    every_ms, &held))
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (held)
		log_msg(level, "%s (and %lu more like it since the last such line)", msg, held);
	else
		log_msg(level, "%s", msg);
}
