//go:build linux && cgo

/*
 * Telemetry commands answered by Go: see telemetry.h.
 */
#include <stdint.h>

#include <rte_telemetry.h>

#include "telemetry.h"
#include "_cgo_export.h"

/*
 * pr_tel_handler is the callback of every command registered from Go. DPDK
 * 22.11 passes a callback nothing but the command's name (there is no user
 * argument), which is what Go looks the command up by. It runs on the
 * connection's telemetry thread, which Go adopts for the call.
 */
static int pr_tel_handler(const char *cmd, const char *params,
	struct rte_tel_data *d)
{
	return prTelemetryAnswer((char *)cmd, (char *)params, d);
}

int pr_tel_register(const char *cmd, const char *help)
{
	return rte_telemetry_register_cmd(cmd, pr_tel_handler, help);
}

int pr_tel_start_dict(struct rte_tel_data *d)
{
	return rte_tel_data_start_dict(d);
}

int pr_tel_add_u64(struct rte_tel_data *d, const unsigned char *name,
	uint64_t v)
{
	return rte_tel_data_add_dict_u64(d, (const char *)name, v);
}

struct rte_tel_data *pr_tel_add_dict(struct rte_tel_data *d,
	const unsigned char *name)
{
	struct rte_tel_data *c = rte_tel_data_alloc();

	if (c == NULL)
		return NULL;
	/* keep = 0: DPDK frees the nested dict after writing the reply. */
	if (rte_tel_data_start_dict(c) < 0 ||
			rte_tel_data_add_dict_container(d, (const char *)name,
				c, 0) < 0) {
		rte_tel_data_free(c);
		return NULL;
	}
	return c;
}
