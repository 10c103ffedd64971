/* The daemon's side of BPF steering (control thread): load per the config, keep the
 * targets map in step with the intercepted host names (re-resolved with evdns, kept for
 * a grace period after they disappear) and static targets, and report counters. */
#ifndef LOTA_STEERING_H
#define LOTA_STEERING_H

#include <stdbool.h>

struct lotad;
struct evbuffer;

/* Returns 0 when steering runs or was not asked for; -errno when `bpf = on` and it
 * cannot load (the caller exits). With `bpf = auto` a failure is one log line. */
int steering_start(struct lotad *d);
void steering_stop(struct lotad *d);
bool steering_active(struct lotad *d);
void steering_render_metrics(struct lotad *d, struct evbuffer *out);

#endif
