/*
 * fuzz/guest_luks2.c — libFuzzer harness for the LUKS2 header check of the
 * data disk (guest/disk.c), which reads bytes the host controls. The first
 * byte picks the mode: odd → the input is the raw device head; even → the
 * rest is the JSON area, wrapped in both header copies with valid
 * checksums so the layout rules themselves are reached.
 */
#include <stdlib.h>
#include <string.h>

#include "../guest/disk.h"
#include "crypto/hash.h"

#define HS 16384u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void put_copy(uint8_t *h, uint64_t off, const uint8_t *json, size_t n)
{
	memcpy(h, off ? "SKUL\xba\xbe" : "LUKS\xba\xbe", 6);
	h[7] = 2;
	h[8 + 6] = HS >> 8; /* hdr_size, big-endian */
	memcpy(h + 72, "sha256", 7);
	h[256 + 6] = (uint8_t)(off >> 8);
	memcpy(h + 4096, json, n);
	sha256(h, HS, h + 448);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	if (data[0] & 1) {
		disk_luks2_check(data + 1, size - 1, NULL);
		return 0;
	}
	if (size - 1 > HS - 4096 - 1)
		return 0;
	uint8_t *h = calloc(1, 2 * HS);
	if (!h)
		return 0;
	put_copy(h, 0, data + 1, size - 1);
	put_copy(h + HS, HS, data + 1, size - 1);
	disk_luks2_check(h, 2 * HS, NULL);
	free(h);
	return 0;
}
