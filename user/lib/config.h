/* lotad's configuration: every key can come from the config file (`key = value`) or a
 * flag (`--key value`); flags win. Bad input names the key and the daemon exits 2. */
#ifndef LOTA_CONFIG_H
#define LOTA_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define CONFIG_STR_MAX 1024
/* scrub-rate's bound: more than a drive reads is a typo (and rate * time must not wrap). */
#define CONFIG_SCRUB_RATE_MAX (1ULL << 40)

struct config {
	char listen[CONFIG_STR_MAX];
	char origin[CONFIG_STR_MAX];
	char region_origins[CONFIG_STR_MAX];
	char bucket_origins[CONFIG_STR_MAX];
	char origin_timeouts[CONFIG_STR_MAX];
	char host[CONFIG_STR_MAX];
	char admin[CONFIG_STR_MAX];
	char admin_socket[CONFIG_STR_MAX];
	char admin_token[CONFIG_STR_MAX];
	char cache_dir[CONFIG_STR_MAX];
	uint64_t workers;
	char ca_file[CONFIG_STR_MAX];
	char log_level[CONFIG_STR_MAX];
	uint64_t capacity;
	uint64_t min_object_size;
	uint64_t chunk_size;
	uint64_t fill_parallelism;
	uint64_t scrub_rate; /* bytes per second the scrubber re-verifies; 0: off */
	uint64_t scrub_interval; /* seconds from a pass's start to the next's, at least */
	char service_credentials[CONFIG_STR_MAX];
	char region[CONFIG_STR_MAX];
	char consistency[CONFIG_STR_MAX];
	char bpf[CONFIG_STR_MAX];
	char cgroup[CONFIG_STR_MAX];
	char bpf_pin_dir[CONFIG_STR_MAX];
	bool sockmap;
	bool pin_links;
	bool splice;
	char steer_to[CONFIG_STR_MAX];
	char targets[CONFIG_STR_MAX];
	char peers[CONFIG_STR_MAX];
	char self[CONFIG_STR_MAX];
	char peer_listen[CONFIG_STR_MAX];
	char cluster_secret[CONFIG_STR_MAX];
	uint64_t max_connections;
	uint64_t client_timeout;
	uint64_t origin_timeout;
	uint64_t drain_timeout;
};

void config_defaults(struct config *c);
/* Parses argv (and the file named by --config) into c. Returns 0, 1 for --help or
 * --version (already printed), or -EINVAL with a one-line reason in err. */
int config_load(struct config *c, int argc, char **argv, char *err, size_t errlen);
int config_set(struct config *c, const char *key, const char *value, char *err, size_t errlen);
void config_usage(FILE *out);
int config_parse_size(const char *s, uint64_t *out);

#endif
