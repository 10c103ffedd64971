/* Process-wide counters, updated with relaxed atomics from any thread and rendered in
 * Prometheus text format by the admin endpoint. */
#ifndef LOTA_METRICS_H
#define LOTA_METRICS_H

#include <stddef.h>
#include <stdint.h>

#define METRICS(X)                                                                                 \
	X(requests_total, counter, "client requests parsed")                                       \
	X(responses_2xx, counter, "responses with a 2xx status")                                   \
	X(responses_3xx, counter, "responses with a 3xx status")                                   \
	X(responses_4xx, counter, "responses with a 4xx status")                                   \
	X(responses_5xx, counter, "responses with a 5xx status")                                   \
	X(bad_requests, counter, "requests refused as malformed, oversize or ambiguous")           \
	X(connections_accepted, counter, "client connections accepted")                            \
	X(connections_refused, counter, "client connections refused at max-connections")           \
	X(connections_handed_off, counter, "accepted connections handed to a less busy worker")    \
	X(accept_errors, counter, "accept() failures (out of file descriptors, memory)")           \
	X(connections_open, gauge, "client connections open now")                                  \
	X(exchanges_active, gauge, "requests in progress now")                                     \
	X(client_timeouts, counter, "client connections closed for silence")                       \
	X(client_aborts, counter, "client connections closed before their response ended")         \
	X(origin_requests, counter, "requests sent to the origin")                                 \
	X(origin_connections_reused, counter,                                                      \
	  "requests sent on an idle kept-alive connection to the origin (lotad's own, or a new "   \
	  "client's)")                                                                             \
	X(origin_errors, counter, "origin connect, TLS or protocol failures")                      \
	X(origin_timeouts, counter, "origin requests that timed out")                              \
	X(origin_aborts, counter, "responses cut because the origin failed mid-body")              \
	X(origin_retries, counter, "requests resent after a stale keep-alive connection")          \
	X(bytes_from_client, counter, "request body bytes received from clients")                  \
	X(bytes_to_client, counter, "response body bytes sent to clients")                         \
	X(bytes_from_origin, counter, "response body bytes received from the origin")              \
	X(cache_hits, counter, "object reads served from the cache")                               \
	X(cache_misses, counter, "object reads filled from the origin")                            \
	X(cache_peer_hits, counter, "reads whose missing chunks all came from their owner nodes")  \
	X(cache_bypasses, counter, "object reads not cached (size, no-store, no credentials)")     \
	X(cache_bytes_served, counter, "body bytes served from the cache")                         \
	X(cache_fills_started, counter, "cache fills started")                                     \
	X(cache_fills_committed, counter, "cache fills committed")                                 \
	X(cache_fills_aborted, counter, "cache fills abandoned")                                   \
	X(cache_coalesced, counter, "readers that followed another request's fill")                \
	X(cache_chunk_hits, counter, "chunks served from the cache, committed")                    \
	X(cache_chunk_misses, counter, "chunks a read needed that were not committed")             \
	X(cache_chunk_fills, counter, "chunk fills started (lotad's ranged GETs and streams)")     \
	X(cache_chunk_follows, counter, "chunks a read followed while their fill ran")             \
	X(cache_stream_handoffs, counter, "adopted 200s ended where parallel fetches took over")   \
	X(cache_chunk_resumes, counter, "reads resumed from the origin after a fill failed")       \
	X(cache_fill_retries, counter,                                                             \
	  "lotad's own fill requests sent again after 5xx or a fault")                             \
	X(bytes_from_origin_relay, counter, "origin body bytes relayed to clients (not cached)")   \
	X(bytes_from_origin_fill, counter, "origin body bytes read into chunks for reads")         \
	X(bytes_from_origin_prestage, counter,                                                     \
	  "origin body bytes read into chunks for pre-staging")                                    \
	X(cache_invalidations, counter, "entries dropped after a write or a confirmed 404")        \
	X(cache_stale_metadata, counter,                                                           \
	  "reads fetched again: the object's headers changed at the origin")                       \
	X(cache_evictions, counter, "entries evicted by LRU")                                      \
	X(cache_bytes_used, gauge, "bytes held by committed cache entries")                        \
	X(cache_capacity_bytes, gauge, "cache capacity")                                           \
	X(cache_entries, gauge, "committed cache entries")                                         \
	X(cache_corrupt_chunks, counter,                                                           \
	  "cached chunks found corrupt (bad CRC-32, short file, bad header) and dropped")          \
	X(cache_lost_chunks, counter, "cached chunks dropped because their file was gone")         \
	X(cache_verified_chunks, counter, "cached chunks verified before their first read")        \
	X(cache_verified_bytes, counter,                                                           \
	  "bytes of cached chunks verified before their first read")                               \
	X(cache_scrub_chunks, counter, "cached chunks re-verified by the scrubber")                \
	X(cache_scrub_bytes, counter, "bytes of cached chunks re-verified by the scrubber")        \
	X(cache_scrub_passes, counter, "scrubber rounds over every cached chunk")                  \
	X(cache_degraded, gauge,                                                                   \
	  "1 while the cache directory is gone or refuses writes: nothing is cached")              \
	X(cache_degradations, counter, "times the cache directory went unusable")                  \
	X(cache_dir_recoveries, counter, "times the cache directory became usable again")          \
	X(cache_sync_batches, counter, "batches of commits made durable by the commit thread")     \
	X(cache_dir_syncs, counter,                                                                \
	  "cache directories fsync()ed to make committed chunks durable")                          \
	X(cache_sync_errors, counter, "failed fsync()s of cache directories (retried)")            \
	X(peer_refused, counter, "peer-port requests refused (bad or missing signature)")          \
	X(peer_replayed, counter, "peer-port requests refused as a replayed signature")            \
	X(peer_replay_full, counter,                                                               \
	  "peer-port requests refused because the replay cache was full")                          \
	X(peer_bytes_spliced, counter, "chunk bytes from owner nodes moved to clients by splice")

enum metric {
#define X(name, type, help) M_##name,
	METRICS(X)
#undef X
	M__COUNT
};

extern uint64_t metrics[M__COUNT];

static inline void metric_add(enum metric m, uint64_t v)
{
	__atomic_fetch_add(&metrics[m], v, __ATOMIC_RELAXED);
}

static inline void metric_sub(enum metric m, uint64_t v)
{
	__atomic_fetch_sub(&metrics[m], v, __ATOMIC_RELAXED);
}

static inline void metric_set(enum metric m, uint64_t v)
{
	__atomic_store_n(&metrics[m], v, __ATOMIC_RELAXED);
}

static inline uint64_t metric_get(enum metric m)
{
	return __atomic_load_n(&metrics[m], __ATOMIC_RELAXED);
}

void metric_status(int status);
/* Every metric as `lota_<name> <value>` with HELP and TYPE lines, a metric per call. */
typedef void (*metrics_emit_fn)(void *arg, const char *p, size_t n);
void metrics_render(metrics_emit_fn emit, void *arg);

#endif
