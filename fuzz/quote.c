/*
 * fuzz/quote.c — libFuzzer harness for the DCAP quote parser: any input must
 * either parse into a self-consistent quote or fail with a message, never
 * crash, read out of bounds or leak.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "tdx/quote.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct quote q;
	struct err e = ERR_INIT;

	if (quote_parse(&q, data, size, &e) == 0) {
		/* Touch the variable parts so ASan checks their bounds. */
		volatile uint8_t sink = 0;
		for (size_t i = 0; i < q.qe_auth_len; i++)
			sink ^= q.qe_auth[i];
		for (size_t i = 0; i < q.pck_chain_len; i++)
			sink ^= (uint8_t)q.pck_chain_pem[i];
		sink ^= quote_report_data(&q)[63];
		(void)sink;
		quote_free(&q);
	}
	return 0;
}
