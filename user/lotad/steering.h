/* The daemon's side of BPF steering (control thread): load per the config, keep the
 * targets map in step with the intercepted host names (re-resolved with evdns, kept for
 * a grace period after they disappear) and static targets, and report counters. */
#ifndef LOTA_STEERING_H
#define LOTA_STEERING_H

struct lotad;
struct steering;

/* Registers /admin/targets and the "bpf" part of /admin/status and /metrics, then loads
 * and attaches. Returns 0 when steering runs or was not asked for; -errno when `bpf = on`
 * and it cannot load (the caller exits). With `bpf = auto` a failure is one log line. */
int steering_start(struct lotad *d, struct steering **out);
/* Detaches (connects go where they were going again); safe to call twice. */
void steering_stop(struct steering *st);
void steering_free(struct steering *st);

#endif
