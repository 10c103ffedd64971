/* Transparent steering loader: loads bpf/steer.bpf.c, pins its maps and programs with
 * BTF under a bpffs directory, attaches it to a cgroup and edits the targets map.
 * Every function returns 0 (or a count) or a negative errno. */
#ifndef LOTA_STEER_LOADER_H
#define LOTA_STEER_LOADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#define STEER_PIN_DIR "/sys/fs/bpf/lota"

struct steer;

struct steer_opts {
	const char *cgroup;		  /* cgroup2 directory; NULL: the cgroup2 mount itself */
	const char *pin_dir;		  /* NULL: STEER_PIN_DIR; bpffs is mounted if needed */
	bool is_sockmap;		  /* short-circuit local pairs with sockops + sk_msg */
	bool is_pin_links;		  /* keep steering after lotad exits (default: fail-open) */
	struct sockaddr_storage redirect; /* where steered connects go: lotad's address */
	pid_t own_tgid;			  /* never steered; 0: this process */
	uint32_t msg_budget; /* bytes a client sends by redirect before plain TCP; 0: default */
};

struct steer_stats {
	uint64_t rewritten;
	uint64_t skipped_own;
	uint64_t map_miss;
	uint64_t inserted;
	uint64_t redirected;
	uint64_t redirect_failed;
	uint64_t budget_spent;
};

/* Loads, pins (replacing stale pins of a previous run) and attaches. On failure writes
 * one line to err, e.g. "bpf: attach connect4 to /sys/fs/cgroup/unified: Operation not
 * permitted", leaves nothing attached or pinned, and returns a negative errno. */
int steer_start(const struct steer_opts *o, struct steer **out, char *err, size_t errlen);

/* Detaches, unpins and frees; NULL is fine. */
void steer_stop(struct steer *s);

/* Targets are (address, port) pairs: AF_INET or AF_INET6 (v4-mapped counts as IPv4).
 * is_static marks the map entry STEER_TARGET_F_STATIC (bpftool shows which targets came
 * from DNS); adding an existing target keeps it and can only add that flag. */
int steer_target_add(struct steer *s, const struct sockaddr *sa, bool is_static);
int steer_target_del(struct steer *s, const struct sockaddr *sa);

/* Writes up to max targets to out; returns how many there are in all (may exceed max). */
int steer_targets_list(struct steer *s, struct sockaddr_storage *out, size_t max);

/* Sums the per-CPU counters. */
int steer_stats(struct steer *s, struct steer_stats *st);

/* The pin directory in use, for log lines. */
const char *steer_pin_dir(const struct steer *s);

#endif
