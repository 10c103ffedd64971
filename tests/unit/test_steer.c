/* Unit tests for user/steer.c (root): load into a child cgroup of the cgroup2 mount with a
 * temporary pin directory, then check pins, the config map, attachments, target add/del,
 * stats, stale-pin replacement and cleanup. No traffic: tests/bpf/test_steer_netns.py. */
#include "unit.h"
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <mntent.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "steer-loader.h"
#include "steer.h"

static char cg[512], pin_dir[256];

static int cgroup_make(void)
{
	FILE *f = setmntent("/proc/self/mounts", "r");
	struct mntent *m;
	int rc = -1;

	while (f && (m = getmntent(f))) {
		if (strcmp(m->mnt_type, "cgroup2"))
			continue;
		snprintf(cg, sizeof(cg), "%s/lota-unit-steer-%d", m->mnt_dir, (int)getpid());
		rc = mkdir(cg, 0755);
		break;
	}
	if (f)
		endmntent(f);
	snprintf(pin_dir, sizeof(pin_dir), "/sys/fs/bpf/lota-unit-steer-%d", (int)getpid());
	return rc;
}

static int cgroup_drop(void)
{
	rmdir(cg);
	return 0;
}

static struct sockaddr_in sin4(const char *ip, int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};

	inet_pton(AF_INET, ip, &a.sin_addr);
	return a;
}

static struct sockaddr_in6 sin6(const char *ip, int port)
{
	struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port)};

	inet_pton(AF_INET6, ip, &a.sin6_addr);
	return a;
}

static struct steer_opts opts(bool is_sockmap, bool is_pin_links)
{
	struct steer_opts o = {.cgroup = cg,
			       .pin_dir = pin_dir,
			       .is_sockmap = is_sockmap,
			       .is_pin_links = is_pin_links,
			       .own_tgid = 4242};
	struct sockaddr_in r = sin4("198.18.3.1", 8080);

	memcpy(&o.redirect, &r, sizeof(r));
	return o;
}

static bool is_pinned(const char *name)
{
	char p[512];

	snprintf(p, sizeof(p), "%s/%s", pin_dir, name);
	return access(p, F_OK) == 0;
}

/* How many programs of the given attach type sit on the test cgroup. */
static int attached(enum bpf_attach_type type)
{
	__u32 ids[8], n = 8;
	int fd = open(cg, O_RDONLY | O_DIRECTORY), rc;

	rc = bpf_prog_query(fd, type, 0, NULL, ids, &n);
	close(fd);
	return rc ? -1 : (int)n;
}

static void test_start_pins_and_config(void)
{
	struct steer_opts o = opts(true, false);
	struct steer_config c;
	struct steer *s = NULL;
	char err[256] = "", p[512];
	__u32 zero = 0;
	int fd;

	CU_ASSERT_EQUAL_FATAL(steer_start(&o, &s, err, sizeof(err)), 0);
	CU_ASSERT_STRING_EQUAL(steer_pin_dir(s), pin_dir);
	CU_ASSERT(is_pinned("targets") && is_pinned("config") && is_pinned("stats"));
	CU_ASSERT(is_pinned("clients") && is_pinned("peers") && is_pinned("flows"));
	CU_ASSERT(is_pinned("connect4") && is_pinned("connect6") && is_pinned("sockops"));
	CU_ASSERT(is_pinned("msg") && !is_pinned("link_connect4"));
	CU_ASSERT_EQUAL(attached(BPF_CGROUP_INET4_CONNECT), 1);
	CU_ASSERT_EQUAL(attached(BPF_CGROUP_INET6_CONNECT), 1);
	CU_ASSERT_EQUAL(attached(BPF_CGROUP_SOCK_OPS), 1);

	snprintf(p, sizeof(p), "%s/config", pin_dir);
	fd = bpf_obj_get(p);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_EQUAL(bpf_map_lookup_elem(fd, &zero, &c), 0);
	close(fd);
	CU_ASSERT_EQUAL(c.flags, STEER_CFG_HAS_V4 | STEER_CFG_SOCKMAP);
	CU_ASSERT_EQUAL(c.own_tgid, 4242);
	CU_ASSERT_EQUAL(c.redirect_port, htons(8080));
	CU_ASSERT_EQUAL(c.redirect_v4[10], 0xff);
	CU_ASSERT_EQUAL(c.redirect_v4[12], 198);
	CU_ASSERT_EQUAL(c.redirect_v4[15], 1);
	CU_ASSERT_EQUAL(c.msg_budget, STEER_DEFAULT_MSG_BUDGET);

	steer_stop(s);
	CU_ASSERT(access(pin_dir, F_OK) != 0);
	CU_ASSERT_EQUAL(attached(BPF_CGROUP_INET4_CONNECT), 0);
	CU_ASSERT_EQUAL(attached(BPF_CGROUP_SOCK_OPS), 0);
}

/* The flags of a target's entry in the pinned map, keyed as bpf/steer.h says (port in
 * host order); -1 if absent. */
static int target_flags(const struct sockaddr_in *a)
{
	struct steer_target_key k = {.addr = {[10] = 0xff, [11] = 0xff}};
	struct steer_target v;
	char p[300];
	int fd, rc;

	memcpy(k.addr + 12, &a->sin_addr, 4);
	k.port = ntohs(a->sin_port);
	snprintf(p, sizeof(p), "%s/targets", pin_dir);
	fd = bpf_obj_get(p);
	if (fd < 0)
		return -1;
	rc = bpf_map_lookup_elem(fd, &k, &v) ? -1 : (int)v.flags;
	close(fd);
	return rc;
}

static void test_targets(void)
{
	struct steer_opts o = opts(false, false);
	struct sockaddr_in a = sin4("198.18.4.1", 80), b = sin4("198.18.4.2", 443);
	struct sockaddr_in6 m = sin6("::ffff:198.18.4.1", 80), v6 = sin6("fd00:203::1", 80);
	struct sockaddr_storage out[8];
	struct sockaddr_in *o4 = (void *)&out[0];
	struct steer *s = NULL;
	char err[256] = "";

	CU_ASSERT_EQUAL_FATAL(steer_start(&o, &s, err, sizeof(err)), 0);
	/* sockmap off: no sockops attached, connect hooks only */
	CU_ASSERT_EQUAL(attached(BPF_CGROUP_SOCK_OPS), 0);
	CU_ASSERT_EQUAL(attached(BPF_CGROUP_INET4_CONNECT), 1);
	CU_ASSERT_EQUAL(steer_targets_list(s, out, 8), 0);
	CU_ASSERT_EQUAL(steer_target_add(s, (struct sockaddr *)&a, false), 0);
	CU_ASSERT_EQUAL(target_flags(&a), 0);
	/* v4-mapped is the same target as its IPv4 address; adding again is fine, and a
	 * static add of a resolved target makes it static */
	CU_ASSERT_EQUAL(steer_target_add(s, (struct sockaddr *)&m, true), 0);
	CU_ASSERT_EQUAL(target_flags(&a), STEER_TARGET_F_STATIC);
	CU_ASSERT_EQUAL(steer_target_add(s, (struct sockaddr *)&a, false), 0);
	CU_ASSERT_EQUAL(target_flags(&a), STEER_TARGET_F_STATIC);
	CU_ASSERT_EQUAL(steer_targets_list(s, out, 8), 1);
	CU_ASSERT_EQUAL(out[0].ss_family, AF_INET);
	CU_ASSERT_EQUAL(o4->sin_addr.s_addr, a.sin_addr.s_addr);
	CU_ASSERT_EQUAL(o4->sin_port, htons(80));
	CU_ASSERT_EQUAL(steer_target_add(s, (struct sockaddr *)&b, true), 0);
	CU_ASSERT_EQUAL(steer_target_add(s, (struct sockaddr *)&v6, true), 0);
	CU_ASSERT_EQUAL(steer_targets_list(s, out, 8), 3);
	CU_ASSERT_EQUAL(steer_targets_list(s, out, 1), 3); /* count beyond max */
	CU_ASSERT_EQUAL(steer_target_del(s, (struct sockaddr *)&m), 0);
	CU_ASSERT_EQUAL(steer_target_del(s, (struct sockaddr *)&a), -ENOENT);
	CU_ASSERT_EQUAL(steer_targets_list(s, out, 8), 2);
	steer_stop(s);
}

static void test_stats_zero(void)
{
	struct steer_opts o = opts(true, false);
	struct steer_stats st;
	struct steer *s = NULL;
	char err[256] = "";

	CU_ASSERT_EQUAL_FATAL(steer_start(&o, &s, err, sizeof(err)), 0);
	memset(&st, 0xff, sizeof(st));
	CU_ASSERT_EQUAL(steer_stats(s, &st), 0);
	CU_ASSERT_EQUAL(st.rewritten + st.skipped_own + st.map_miss + st.inserted, 0);
	CU_ASSERT_EQUAL(st.redirected + st.redirect_failed + st.budget_spent, 0);
	steer_stop(s);
}

/* A run that died with pinned links leaves steering attached; the next start must take
 * it over, not stack a second set of programs on the cgroup. */
static void test_stale_pins_replaced(void)
{
	struct steer_opts o = opts(true, true);
	struct steer *s1 = NULL, *s2 = NULL;
	char err[256] = "";

	CU_ASSERT_EQUAL_FATAL(steer_start(&o, &s1, err, sizeof(err)), 0);
	CU_ASSERT(is_pinned("link_connect4") && is_pinned("link_sockops"));
	CU_ASSERT_EQUAL_FATAL(steer_start(&o, &s2, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(attached(BPF_CGROUP_INET4_CONNECT), 1);
	CU_ASSERT_EQUAL(attached(BPF_CGROUP_INET6_CONNECT), 1);
	CU_ASSERT_EQUAL(attached(BPF_CGROUP_SOCK_OPS), 1);
	steer_stop(s2);
	CU_ASSERT_EQUAL(attached(BPF_CGROUP_INET4_CONNECT), 0);
	/* s1 lost its pins to s2; stopping it now must not disturb anything */
	steer_stop(s1);
	CU_ASSERT(access(pin_dir, F_OK) != 0);
}

static void test_errors(void)
{
	struct steer_opts o = opts(false, false);
	struct sockaddr_in any = sin4("0.0.0.0", 8080);
	struct steer *s = (struct steer *)1;
	char err[256] = "";

	o.cgroup = "/nonexistent-cgroup";
	CU_ASSERT_EQUAL(steer_start(&o, &s, err, sizeof(err)), -ENOENT);
	CU_ASSERT_PTR_NULL(s);
	CU_ASSERT_STRING_EQUAL(err,
			       "bpf: open cgroup /nonexistent-cgroup: No such file or directory");
	o = opts(false, false);
	memcpy(&o.redirect, &any, sizeof(any));
	CU_ASSERT_EQUAL(steer_start(&o, &s, err, sizeof(err)), -EINVAL);
	CU_ASSERT(strstr(err, "redirect address") != NULL);
	o = opts(false, false);
	o.pin_dir = "/tmp";
	CU_ASSERT(steer_start(&o, &s, err, sizeof(err)) < 0);
	CU_ASSERT(strstr(err, "not on bpffs") != NULL);
	CU_ASSERT_EQUAL(attached(BPF_CGROUP_INET4_CONNECT), 0);
}

int main(void)
{
	static const struct unit_test tests[] = {
	    {"start: pins, config, attach, stop", test_start_pins_and_config},
	    {"targets add/del/list", test_targets},
	    {"stats start at zero", test_stats_zero},
	    {"stale pins replaced", test_stale_pins_replaced},
	    {"errors", test_errors},
	};
	int r;

	if (geteuid() != 0) {
		fprintf(stderr, "test_steer: needs root (BPF, cgroups)\n");
		return 1;
	}
	r = UNIT_RUN("steer", cgroup_make, cgroup_drop, tests);
	return r;
}
