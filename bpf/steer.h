/* Transparent steering: map layouts shared by bpf/steer.bpf.c and user/steer.c.
 * Every address is 16 bytes, IPv4 as v4-mapped IPv6 (::ffff:a.b.c.d), so one lookup
 * serves connect4, connect6 to a mapped address, and sockets of either family. */
#ifndef LOTA_BPF_STEER_H
#define LOTA_BPF_STEER_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* targets map: which (address, port) pairs connect() is steered away from. */
struct steer_target_key {
	__u8 addr[16]; /* network order, IPv4 v4-mapped */
	__u16 port;    /* host order, so that bpftool's dump reads 80, not 20480 */
	__u16 pad;     /* zero */
};

#define STEER_TARGET_F_STATIC 1u /* added by hand (targets, lotactl), not from DNS */

struct steer_target {
	__u32 flags; /* STEER_TARGET_F_* (user space's business; BPF ignores it) */
	__u32 pad;
	__u64 last_hit_ns; /* bpf_ktime_get_ns() of the last steered connect, 0 = never */
};

/* config map: one entry, written by the loader before attaching. */
#define STEER_CFG_HAS_V4 1u  /* redirect_v4 is valid */
#define STEER_CFG_HAS_V6 2u  /* redirect_v6 is valid */
#define STEER_CFG_SOCKMAP 4u /* short-circuit local pairs with sk_msg */

struct steer_config {
	__u32 flags;	      /* STEER_CFG_* */
	__u32 own_tgid;	      /* lotad's tgid: its connects are never steered */
	__u8 redirect_v4[16]; /* v4-mapped, network order */
	__u8 redirect_v6[16]; /* network order */
	__u16 redirect_port;  /* network order */
	__u16 pad;
	__u32 msg_budget; /* bytes a client may send by redirect before going plain TCP */
};

/* stats: per-CPU array indexed by enum steer_stat. */
enum steer_stat {
	STEER_STAT_REWRITTEN,	    /* connect() rewritten to lotad */
	STEER_STAT_SKIPPED_OWN,	    /* lotad's own connect to a target, left alone */
	STEER_STAT_MAP_MISS,	    /* connect() to a non-target */
	STEER_STAT_INSERTED,	    /* sockets put into a sockhash */
	STEER_STAT_REDIRECTED,	    /* client sends delivered to lotad's ingress */
	STEER_STAT_REDIRECT_FAILED, /* peer not found: the flow went plain TCP */
	STEER_STAT_BUDGET_SPENT,    /* flow went plain TCP after msg_budget bytes */
	STEER_STAT_MAX,
};

/* sockhash key: a socket's own 4-tuple, as seen by that socket. */
struct steer_sock_key {
	__u8 local[16];
	__u8 remote[16];
	__u16 lport; /* network order */
	__u16 rport; /* network order */
	__u32 pad;
};

/* Per-socket state (sk_storage) of a steered client socket. */
#define STEER_FLOW_STEERED 1u  /* connect() was rewritten */
#define STEER_FLOW_INSERTED 2u /* in the clients sockhash */
#define STEER_FLOW_PLAIN 4u    /* sends go plain TCP from now on, never back */

struct steer_flow {
	__u32 state; /* STEER_FLOW_* */
	__u32 pad;
	__u64 sent; /* bytes redirected so far */
};

#define STEER_DEFAULT_MSG_BUDGET (1u << 20)
#define STEER_MAX_TARGETS 1024
#define STEER_MAX_SOCKS 65536

#endif
