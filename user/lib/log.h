/* Logging: one line per event on stderr, in a form journald and `kubectl logs` read well
 * ("2026-11-22T00:50:13.123Z info  lotad: message"). The level can change at runtime. */
#ifndef LOTA_LOG_H
#define LOTA_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

#define LOG_LINE_MAX 2048

void log_set_level(enum log_level level);
enum log_level log_get_level(void);
int log_level_parse(const char *s, enum log_level *out);
const char *log_level_name(enum log_level level);
/* Copies n bytes of in to out (cap bytes, NUL-terminated, truncated to fit) with control
 * bytes, backslashes and invalid or non-printable UTF-8 written as \n, \t, \\, \xNN.
 * Returns the length written. log_msg applies it to every message. */
size_t log_escape(const char *in, size_t n, char *out, size_t cap);
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define LOG_EVERY_SECOND 1000 /* log_warn_every's usual interval, ms */

/* A line that can come many times a second (a fill abandoned on a full disk): at most one
 * per call site every interval; those held back are counted and said with the next. */
struct log_every {
	uint64_t next_ms; /* no line before this (CLOCK_MONOTONIC) */
	unsigned long held;
};
/* Should a line go out at now_ms? If so, *held is how many were held back since the last. */
bool log_every_take(struct log_every *e, uint64_t now_ms, unsigned every_ms, unsigned long *held);
void log_msg_every(struct log_every *e, unsigned every_ms, enum log_level level, const char *fmt,
		   ...) __attribute__((format(printf, 4, 5)));
#define log_warn_every(every_ms, ...)                                                              \
	do {                                                                                       \
		static struct log_every every_;                                                    \
		log_msg_every(&every_, (every_ms), LOG_WARN, __VA_ARGS__);                         \
	} while (0)

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...)                                                                              \
	do {                                                                                       \
		if (log_get_level() >= LOG_INFO)                                                   \
			log_msg(LOG_INFO, __VA_ARGS__);                                            \
	} while (0)
#define log_debug(...)                                                                             \
	do {                                                                                       \
		if (log_get_level() >= LOG_DEBUG)                                                  \
			log_msg(LOG_DEBUG, __VA_ARGS__);                                           \
	} while (0)

#endif
