/*
 * txt_probe.c — test helper: `txt_probe SERVER NAME` prints the TXT values
 * dns_txt_lookup finds at NAME, one a line (SERVER "" = system resolver).
 * Exit 0 with no output when there are none, 1 on lookup errors.
 */
#include <stdio.h>

#include "dns/txt_lookup.h"

int main(int argc, char **argv)
{
	struct err e = ERR_INIT;
	struct dns_txt t;

	if (argc != 3) {
		fprintf(stderr, "usage: txt_probe SERVER|\"\" NAME\n");
		return 2;
	}
	if (dns_txt_lookup(argv[1], argv[2], &t, &e) < 0) {
		fprintf(stderr, "txt_probe: %s\n", err_str(&e));
		return 1;
	}
	for (size_t i = 0; i < t.count; i++)
		printf("%s\n", t.values[i]);
	dns_txt_free(&t);
	return 0;
}
