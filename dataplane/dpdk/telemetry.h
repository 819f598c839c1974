/*
 * C side of the telemetry commands (telemetry.c): DPDK calls one handler,
 * pr_tel_handler, for every command the Go side registers, and it hands
 * the request to Go (prTelemetryAnswer in telemetry_cgo.go), which fills
 * the reply through the functions below. Names reach them already cut to
 * RTE_TEL_MAX_STRING_LEN and stripped of the bytes DPDK refuses, so the
 * only failures left are allocation failures.
 */
#ifndef POOLRELAY_DPDK_TELEMETRY_H
#define POOLRELAY_DPDK_TELEMETRY_H

#include <stdint.h>

#include <rte_telemetry.h>

/* pr_tel_register registers cmd with pr_tel_handler; 0 or a negative errno. */
int pr_tel_register(const char *cmd, const char *help);

/* pr_tel_start_dict makes d an empty dict. */
int pr_tel_start_dict(struct rte_tel_data *d);

/* pr_tel_add_u64 adds the member name: v to the dict d. */
int pr_tel_add_u64(struct rte_tel_data *d, const unsigned char *name,
	uint64_t v);

/*
 * pr_tel_add_dict adds a new empty dict to d as the member name and returns
 * it, or NULL if it could not. d owns it: DPDK frees it once the reply is
 * written.
 */
struct rte_tel_data *pr_tel_add_dict(struct rte_tel_data *d,
	const unsigned char *name);

#endif
