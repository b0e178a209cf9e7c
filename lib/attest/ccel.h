/*
 * ccel.h — the boot-time event log of a TDX guest, as firmware leaves it in
 * the ACPI CCEL table (/sys/firmware/acpi/tables/data/CCEL).
 *
 * Format (TCG PC Client Platform Firmware Profile, crypto-agile log):
 *   header  TCG_PCClientPCREvent (SHA-1 layout): pcr u32, type u32 (3),
 *           digest[20], size u32, TCG_EfiSpecIDEvent ("Spec ID Event03",
 *           the algorithm list with each digest size)
 *   events  TCG_PCR_EVENT2: pcr u32, type u32, count u32,
 *           count × {alg u16, digest[size(alg)]}, size u32, event[size]
 * The log ends at pcr 0xFFFFFFFF or when the table runs out (the rest of
 * the table is 0xFF filler). TDX maps PCR n to RTMR n−1; PCR 0 entries have
 * no RTMR and are skipped. The SHA-384 digest is the one kept.
 */
#ifndef DSTACK_ATTEST_CCEL_H
#define DSTACK_ATTEST_CCEL_H

#include <stddef.h>
#include <stdint.h>

#include "attest/eventlog.h"
#include "core/err.h"

/* Parse a CCEL table into boot events (appended to out). The three IMR0
 * "ACPI DATA" events are named acpi-loader, acpi-rsdp, acpi-tables. */
int ccel_parse(const uint8_t *data, size_t len, struct event_log *out, struct err *e);

#endif
