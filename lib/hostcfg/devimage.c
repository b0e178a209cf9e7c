/*
 * devimage.c — the placeholder guest image of simulated CVMs (see
 * hostcfg.h): the VMM's process backend runs a CVM's programs on the host
 * and never boots a kernel, but every VM names an image, and an image is a
 * directory whose metadata.json names a kernel and an initrd. So the dev
 * host gets `dstack-dev`: that metadata, two empty files, and a digest.txt
 * (the OS image hash its CVMs report, which an auth webhook checks), the
 * SHA-256 of the metadata. Written once, never changed (the hash is part
 * of the policy).
 */
#include <string.h>

#include "core/cleanup.h"
#include "core/fileio.h"
#include "core/hex.h"
#include "crypto/hash.h"
#include "hostcfg/hostcfg.h"

int hostcfg_ensure_dev_image(const char *images_dir, bool *created, struct err *e)
{
	static const char md[] =
	    "{\"cmdline\": \"console=ttyS0\", \"kernel\": \"bzImage\", "
	    "\"initrd\": \"initramfs.cpio.gz\", \"version\": \"0.6.0\", \"is_dev\": true}\n";
	_cleanup_free_ char *dir = NULL, *mdp = NULL, *dg = NULL, *k = NULL, *i = NULL;
	uint8_t h[32];
	char line[66];

	*created = false;
	if (asprintf(&dir, "%s/" HOSTCFG_DEV_IMAGE, images_dir) < 0 ||
	    asprintf(&mdp, "%s/metadata.json", dir) < 0 || asprintf(&dg, "%s/digest.txt", dir) < 0 ||
	    asprintf(&k, "%s/bzImage", dir) < 0 || asprintf(&i, "%s/initramfs.cpio.gz", dir) < 0)
		return err_set(e, "out of memory");
	if (file_exists(mdp) && file_exists(dg))
		return 0;
	sha256(md, strlen(md), h);
	hex_encode(h, sizeof h, line);
	strcat(line, "\n");
	if (mkdir_p(dir, 0755, e) < 0 || file_write_atomic(k, "", 0, 0644, e) < 0 ||
	    file_write_atomic(i, "", 0, 0644, e) < 0 || file_write_atomic(mdp, md, strlen(md), 0644, e) < 0 ||
	    file_write_atomic(dg, line, strlen(line), 0644, e) < 0)
		return err_wrap(e, "placeholder image %s", dir);
	*created = true;
	return 0;
}
