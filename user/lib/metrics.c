/* Counters and their Prometheus rendering. The counters are process-wide by nature (like
 * the log level): every thread adds to them with relaxed atomics, none owns them. */
#include <stdio.h>

#include "metrics.h"

uint64_t metrics[M__COUNT];

static const struct {
	const char *name, *type, *help;
} info[M__COUNT] = {
#define X(name, type, help) {#name, #type, help},
	METRICS(X)
#undef X
};

void metric_status(int status)
{
	if (status >= 200 && status < 300)
		metric_add(M_responses_2xx, 1);
	else if (status >= 300 && status < 400)
		metric_add(M_responses_3xx, 1);
	else if (status >= 400 && status < 500)
		metric_add(M_responses_4xx, 1);
	else if (status >= 500)
		metric_add(M_responses_5xx, 1);
}

void metrics_render(metrics_emit_fn emit, void *arg)
{
	char buf[512];

	for (int i = 0; i < M__COUNT; i++) {
		int n = snprintf(buf, sizeof(buf), "# HELP lota_%s %s\n# TYPE lota_%s %s\nlota_%s %llu\n",
				 info[i].name, info[i].help, info[i].name, info[i].type,
				 info[i].name, (unsigned long long)metric_get((enum metric)i));

		if (n > 0)
			emit(arg, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
	}
}
