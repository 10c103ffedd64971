// SPDX-License-Identifier: GPL-2.0
/* Transparent steering: connect4/6 rewrite connects to intercepted (address, port) pairs
 * towards lotad, fail-open; optionally sockops + sk_msg short-circuit a steered client's
 * sends into lotad's socket on the same node. Map layouts are in steer.h. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "steer.h"

#define AF_INET 2
#define AF_INET6 10
#define SOCK_STREAM 1

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, STEER_MAX_TARGETS);
	__type(key, struct steer_target_key);
	__type(value, struct steer_target);
} steer_targets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct steer_config);
} steer_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STEER_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} steer_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct steer_flow);
} steer_flows SEC(".maps");

/* Steered client sockets. The sk_msg program is attached to this map only, so only the
 * client->lotad direction pays tcp_bpf_sendmsg's copy (FACTS: sendfile loses zero-copy). */
struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, STEER_MAX_SOCKS);
	__type(key, struct steer_sock_key);
	__type(value, __u64);
} steer_clients SEC(".maps");

/* lotad's ends of those connections: no program on this map, so lotad's sends (sendfile
 * of cached bodies) stay plain zero-copy TCP; being here only gives them an ingress queue
 * that the client's redirected sends land in. */
struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, STEER_MAX_SOCKS);
	__type(key, struct steer_sock_key);
	__type(value, __u64);
} steer_peers SEC(".maps");

/* Steered client sockets whose lotad end is not established yet: how the passive side
 * recognises a local pair (sock_ops may look a sockhash up but not release the socket). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, STEER_MAX_SOCKS);
	__type(key, struct steer_sock_key);
	__type(value, __u64);
} steer_pending SEC(".maps");

static __always_inline void stat_inc(enum steer_stat s, __u64 n)
{
	__u32 k = s;
	__u64 *v = bpf_map_lookup_elem(&steer_stats, &k);

	if (v)
		*v += n;
}

static __always_inline struct steer_config *config_get(void)
{
	__u32 k = 0;

	return bpf_map_lookup_elem(&steer_config, &k);
}

static __always_inline void addr_from_v4(__u8 *a, __u32 ip4)
{
	__builtin_memset(a, 0, 10);
	a[10] = 0xff;
	a[11] = 0xff;
	__builtin_memcpy(a + 12, &ip4, 4);
}

static __always_inline bool is_own(const struct steer_config *cfg)
{
	return (bpf_get_current_pid_tgid() >> 32) == cfg->own_tgid;
}

/* Shared tail of connect4/6: the destination is key; returns true if ctx is to be
 * rewritten, having counted why not otherwise. */
static __always_inline bool steer_lookup(const struct steer_config *cfg,
					 struct steer_target_key *key)
{
	struct steer_target *t = bpf_map_lookup_elem(&steer_targets, key);

	if (!t) {
		stat_inc(STEER_STAT_MAP_MISS, 1);
		return false;
	}
	/* lotad's own connects are exempt, so the origin (or a peer) may itself be a
	 * target: lotad reaches it directly and no connect ever loops back into lotad. */
	if (is_own(cfg)) {
		stat_inc(STEER_STAT_SKIPPED_OWN, 1);
		return false;
	}
	t->last_hit_ns = bpf_ktime_get_ns();
	return true;
}

static __always_inline void steer_mark(struct bpf_sock_addr *ctx, const struct steer_config *cfg)
{
	struct steer_flow *f;

	stat_inc(STEER_STAT_REWRITTEN, 1);
	if (!(cfg->flags & STEER_CFG_SOCKMAP) || !ctx->sk)
		return;
	f = bpf_sk_storage_get(&steer_flows, ctx->sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (f)
		f->state = STEER_FLOW_STEERED;
}

SEC("cgroup/connect4")
int steer_connect4(struct bpf_sock_addr *ctx)
{
	struct steer_target_key key = {};
	struct steer_config *cfg = config_get();
	__u32 ip4;

	if (!cfg || !(cfg->flags & STEER_CFG_HAS_V4) || ctx->type != SOCK_STREAM)
		return 1;
	addr_from_v4(key.addr, ctx->user_ip4);
	key.port = bpf_ntohs((__u16)ctx->user_port);
	if (!steer_lookup(cfg, &key))
		return 1;
	__builtin_memcpy(&ip4, cfg->redirect_v4 + 12, 4);
	ctx->user_ip4 = ip4;
	ctx->user_port = cfg->redirect_port;
	steer_mark(ctx, cfg);
	return 1;
}

SEC("cgroup/connect6")
int steer_connect6(struct bpf_sock_addr *ctx)
{
	struct steer_target_key key = {};
	struct steer_config *cfg = config_get();
	__u32 a[4];
	bool is_mapped;

	if (!cfg || ctx->type != SOCK_STREAM)
		return 1;
	a[0] = ctx->user_ip6[0];
	a[1] = ctx->user_ip6[1];
	a[2] = ctx->user_ip6[2];
	a[3] = ctx->user_ip6[3];
	is_mapped = !a[0] && !a[1] && a[2] == bpf_htonl(0xffff);
	/* A v4-mapped destination means a dual-stack socket: it can reach lotad's IPv4
	 * address as ::ffff:a.b.c.d. A native IPv6 destination needs an IPv6 lotad. */
	if (!(cfg->flags & (is_mapped ? STEER_CFG_HAS_V4 : STEER_CFG_HAS_V6)))
		return 1;
	__builtin_memcpy(key.addr, a, 16);
	key.port = bpf_ntohs((__u16)ctx->user_port);
	if (!steer_lookup(cfg, &key))
		return 1;
	__builtin_memcpy(a, is_mapped ? cfg->redirect_v4 : cfg->redirect_v6, 16);
	ctx->user_ip6[0] = a[0];
	ctx->user_ip6[1] = a[1];
	ctx->user_ip6[2] = a[2];
	ctx->user_ip6[3] = a[3];
	ctx->user_port = cfg->redirect_port;
	steer_mark(ctx, cfg);
	return 1;
}

/* sock_ops and sk_msg give remote_port as the network-order port shifted into the upper
 * half of a u32 (on little-endian), local_port in host order. Context fields are read one
 * u32 at a time, as the verifier requires. */
/* volatile keeps each context read a load at a constant offset from ctx */
#define CTX_U32(f) (*(volatile __u32 *)&(f))

#define SOCK_KEY(k, c)                                                                             \
	do {                                                                                       \
		__u32 f_ = (c)->family, l4_ = (c)->local_ip4, r4_ = (c)->remote_ip4;               \
		__u32 lp_ = (c)->local_port, rp_ = (c)->remote_port, l_[4], r_[4];                 \
		l_[0] = CTX_U32((c)->local_ip6[0]);                                                \
		l_[1] = CTX_U32((c)->local_ip6[1]);                                                \
		l_[2] = CTX_U32((c)->local_ip6[2]);                                                \
		l_[3] = CTX_U32((c)->local_ip6[3]);                                                \
		r_[0] = CTX_U32((c)->remote_ip6[0]);                                               \
		r_[1] = CTX_U32((c)->remote_ip6[1]);                                               \
		r_[2] = CTX_U32((c)->remote_ip6[2]);                                               \
		r_[3] = CTX_U32((c)->remote_ip6[3]);                                               \
		sock_key(k, f_, l4_, r4_, l_, r_, lp_, rp_);                                       \
	} while (0)

static __always_inline void sock_key(struct steer_sock_key *k, __u32 family, __u32 lip4, __u32 rip4,
				     const __u32 *lip6, const __u32 *rip6, __u32 lport, __u32 rport)
{
	if (family == AF_INET) {
		addr_from_v4(k->local, lip4);
		addr_from_v4(k->remote, rip4);
	} else {
		__builtin_memcpy(k->local, lip6, 16);
		__builtin_memcpy(k->remote, rip6, 16);
	}
	k->lport = bpf_htons((__u16)lport);
	k->rport = (__u16)(rport >> 16);
}

static __always_inline void sock_key_reverse(struct steer_sock_key *r,
					     const struct steer_sock_key *k)
{
	__builtin_memcpy(r->local, k->remote, 16);
	__builtin_memcpy(r->remote, k->local, 16);
	r->lport = k->rport;
	r->rport = k->lport;
	r->pad = 0;
}

static __always_inline bool addr_eq(const __u8 *a, const __u8 *b)
{
	const __u32 *x = (const __u32 *)a, *y = (const __u32 *)b;

	return x[0] == y[0] && x[1] == y[1] && x[2] == y[2] && x[3] == y[3];
}

static __always_inline bool is_lotad_addr(const struct steer_config *cfg, const __u8 *a, __u16 port)
{
	if (port != cfg->redirect_port)
		return false;
	if ((cfg->flags & STEER_CFG_HAS_V4) && addr_eq(a, cfg->redirect_v4))
		return true;
	return (cfg->flags & STEER_CFG_HAS_V6) && addr_eq(a, cfg->redirect_v6);
}

/* The active side: a client socket whose connect() was rewritten. */
static __always_inline void sockops_active(struct bpf_sock_ops *skops, struct steer_sock_key *k)
{
	struct bpf_sock *sk = skops->sk;
	struct steer_flow *f;

	if (!sk)
		return;
	f = bpf_sk_storage_get(&steer_flows, sk, 0, 0);
	if (!f || !(f->state & STEER_FLOW_STEERED))
		return;
	if (bpf_sock_hash_update(skops, &steer_clients, k, BPF_NOEXIST) == 0) {
		__u64 now = bpf_ktime_get_ns();

		f->state |= STEER_FLOW_INSERTED;
		stat_inc(STEER_STAT_INSERTED, 1);
		bpf_map_update_elem(&steer_pending, k, &now, BPF_ANY);
	}
}

/* The passive side: lotad's accepted end. The client's ACTIVE_ESTABLISHED runs before
 * it sends the ACK that makes this end established, so a steered local client is already
 * in steer_pending; only its partner goes into peers (remote clients are left alone). */
static __always_inline void sockops_passive(struct bpf_sock_ops *skops,
					    const struct steer_config *cfg,
					    struct steer_sock_key *k)
{
	struct steer_sock_key r;

	if (!is_lotad_addr(cfg, k->local, k->lport))
		return;
	sock_key_reverse(&r, k);
	if (!bpf_map_lookup_elem(&steer_pending, &r))
		return;
	bpf_map_delete_elem(&steer_pending, &r);
	if (bpf_sock_hash_update(skops, &steer_peers, k, BPF_NOEXIST) == 0)
		stat_inc(STEER_STAT_INSERTED, 1);
}

SEC("sockops")
int steer_sockops(struct bpf_sock_ops *skops)
{
	struct steer_config *cfg = config_get();
	struct steer_sock_key k = {};
	__u32 op = skops->op;

	if (!cfg || !(cfg->flags & STEER_CFG_SOCKMAP))
		return 1;
	if (op != BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB && op != BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB)
		return 1;
	if (skops->family != AF_INET && skops->family != AF_INET6)
		return 1;
	SOCK_KEY(&k, skops);
	if (op == BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB)
		sockops_active(skops, &k);
	else
		sockops_passive(skops, cfg, &k);
	return 1;
}

/* A steered client's send. Paths may switch only from redirect to plain TCP, never back:
 * the receiver drains its redirect queue before its TCP queue, so redirected bytes that
 * precede TCP bytes stay in order, while the reverse switch would let later bytes
 * overtake earlier ones still in flight. The budget bounds what one client can queue in
 * lotad's socket, since a redirect has no backpressure (FACTS); after it, the flow
 * gets TCP's flow control back. */
SEC("sk_msg")
int steer_msg(struct sk_msg_md *msg)
{
	struct steer_config *cfg = config_get();
	struct steer_sock_key k = {}, r;
	struct steer_flow *f;
	__u64 size = msg->size;

	if (!cfg || !msg->sk)
		return SK_PASS;
	f = bpf_sk_storage_get(&steer_flows, msg->sk, 0, 0);
	if (!f || (f->state & STEER_FLOW_PLAIN))
		return SK_PASS;
	if (f->sent + size > cfg->msg_budget) {
		f->state |= STEER_FLOW_PLAIN;
		stat_inc(STEER_STAT_BUDGET_SPENT, 1);
		return SK_PASS;
	}
	SOCK_KEY(&k, msg);
	sock_key_reverse(&r, &k);
	if (bpf_msg_redirect_hash(msg, &steer_peers, &r, BPF_F_INGRESS) != SK_PASS) {
		/* lotad's end is not (or no longer) known: TCP from here on. */
		f->state |= STEER_FLOW_PLAIN;
		stat_inc(STEER_STAT_REDIRECT_FAILED, 1);
		return SK_PASS;
	}
	f->sent += size;
	stat_inc(STEER_STAT_REDIRECTED, 1);
	return SK_PASS;
}
