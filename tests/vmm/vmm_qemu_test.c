/*
 * vmm_qemu_test.c — the QEMU backend end to end: a real supervisor, a real
 * `dstack-vmm serve` with `[cvm] backend = "qemu"` and a real
 * qemu-system-x86_64 (KVM when /dev/kvm opens, else TCG: `accel = "auto"`)
 * booting Debian's kernel with a tiny initramfs made here from
 * busybox-static, whose /init prints a marker on the serial console and
 * idles. The test registers a no-TEE image directory, creates the VM over
 * the Vmm RPC, waits for the marker in serial.log (and through GET /logs),
 * checks status and the QEMU command line, exercises ShutdownVm (no vsock on
 * such hosts, so it falls back to stopping the VM), starts it again, stops
 * and removes it, and checks that no QEMU process is left.
 *
 * Skips (TAP `1..0 # SKIP`) only when qemu-system-x86_64, qemu-img, a
 * kernel under /boot or a static busybox is missing.
 *
 * usage: vmm_qemu_test <dstack-vmm> <supervisor>
 */
#include <dirent.h>
#include <elf.h>
#include <glob.h>
#include <stdint.h>

#include <openssl/sha.h>

#include "core/buf.h"
#include "core/hex.h"
#include "core/tap.h"
#include "vmm/workdir.h"
#include "vmm_test_util.h"

#define MARKER "dstack-qemu-test-ok"

/* Search PATH for an executable; malloc'd path or NULL. */
static char *which(const char *name)
{
	const char *path = getenv("PATH");
	_cleanup_free_ char *copy = xstrdup(path && *path ? path : "/usr/bin:/bin");
	char *save = NULL;

	for (char *d = strtok_r(copy, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
		char *p = path_join(d, name);

		if (access(p, X_OK) == 0)
			return p;
		free(p);
	}
	return NULL;
}

/* A statically linked ELF (no PT_INTERP): it runs alone in the initramfs. */
static bool is_static_elf(const char *path)
{
	_cleanup_free_ uint8_t *d = NULL;
	size_t len = 0;
	const Elf64_Ehdr *eh;

	if (file_read_all(path, 64u << 20, &d, &len, NULL) < 0 || len < sizeof(*eh))
		return false;
	eh = (const Elf64_Ehdr *)d;
	if (memcmp(eh->e_ident, ELFMAG, SELFMAG) || eh->e_ident[EI_CLASS] != ELFCLASS64)
		return false;
	for (unsigned i = 0; i < eh->e_phnum; i++) {
		uint64_t off = eh->e_phoff + (uint64_t)i * eh->e_phentsize;
		const Elf64_Phdr *ph;

		if (off + sizeof(*ph) > len)
			return false;
		ph = (const Elf64_Phdr *)(d + off);
		if (ph->p_type == PT_INTERP)
			return false;
	}
	return true;
}

static char *find_kernel(void)
{
	const char *env = getenv("DSTACK_TEST_KERNEL");
	glob_t g;
	char *k = NULL;

	if (env && *env)
		return access(env, R_OK) == 0 ? xstrdup(env) : NULL;
	if (glob("/boot/vmlinuz-*", 0, NULL, &g) != 0)
		return NULL;
	for (size_t i = g.gl_pathc; i-- > 0 && !k;)
		if (access(g.gl_pathv[i], R_OK) == 0)
			k = xstrdup(g.gl_pathv[i]);
	globfree(&g);
	return k;
}

/* One newc ("070701") cpio entry; data may be NULL for directories. */
static void cpio_entry(struct buf *b, const char *name, unsigned mode, const void *data, size_t len)
{
	static unsigned ino = 1;
	size_t nlen = strlen(name) + 1;

	buf_printf(b, "070701%08X%08X%08X%08X%08X%08X%08zX%08X%08X%08X%08X%08zX%08X", ino++, mode, 0u, 0u,
		   (mode & 0040000) ? 2u : 1u, 0u, len, 0u, 0u, 0u, 0u, nlen, 0u);
	buf_append(b, name, nlen);
	while (b->len % 4)
		buf_putc(b, 0);
	if (len)
		buf_append(b, data, len);
	while (b->len % 4)
		buf_putc(b, 0);
}

/* initramfs: /bin/busybox and an /init that prints the marker and idles. */
static int build_initramfs(const char *busybox, const char *out)
{
	static const char init[] = "#!/bin/busybox sh\n"
				   "/bin/busybox echo " MARKER "\n"
				   "while true; do /bin/busybox sleep 3600; done\n";
	_cleanup_free_ uint8_t *bb = NULL;
	size_t bb_len = 0;
	struct buf b = BUF_INIT;
	int rc;

	if (file_read_all(busybox, 64u << 20, &bb, &bb_len, NULL) < 0)
		return -1;
	cpio_entry(&b, ".", 0040755, NULL, 0);
	cpio_entry(&b, "bin", 0040755, NULL, 0);
	cpio_entry(&b, "bin/busybox", 0100755, bb, bb_len);
	cpio_entry(&b, "init", 0100755, init, strlen(init));
	cpio_entry(&b, "TRAILER!!!", 0, NULL, 0);
	rc = file_write_atomic(out, b.data, b.len, 0644, NULL);
	buf_free(&b);
	return rc;
}

static int copy_file(const char *from, const char *to)
{
	_cleanup_free_ uint8_t *d = NULL;
	size_t len = 0;

	if (file_read_all(from, 256u << 20, &d, &len, NULL) < 0)
		return -1;
	return file_write_atomic(to, d, len, 0644, NULL);
}

static size_t count_in(const char *text, const char *needle)
{
	size_t n = 0;

	for (const char *p = text; p && (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

static bool wait_marker(const char *serial, size_t want, int ms)
{
	for (int w = 0; w < ms; w += 500) {
		_cleanup_free_ uint8_t *d = NULL;

		if (file_read_all(serial, 64u << 20, &d, NULL, NULL) == 0 &&
		    count_in((char *)d, MARKER) >= want)
			return true;
		vt_sleep_ms(500);
	}
	return false;
}

/* Processes whose command line mentions `needle` (our test directory). */
static size_t procs_mentioning(const char *needle)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	size_t n = 0;

	if (!d)
		return 0;
	while ((de = readdir(d))) {
		char path[300];
		uint8_t *cmd = NULL;
		size_t len = 0;

		if (de->d_name[0] < '0' || de->d_name[0] > '9' || atoi(de->d_name) == (int)getpid())
			continue;
		snprintf(path, sizeof(path), "/proc/%s/cmdline", de->d_name);
		if (file_read_all(path, 1 << 20, &cmd, &len, NULL) < 0)
			continue;
		for (size_t i = 0; i + 1 < len; i++)
			if (!cmd[i])
				cmd[i] = ' ';
		if (strstr((char *)cmd, needle) && vt_pid_alive(atoi(de->d_name)))
			n++;
		free(cmd);
	}
	closedir(d);
	return n;
}

int main(int argc, char **argv)
{
	char tmpl[] = "/tmp/vmm-qemu-XXXXXX";
	_cleanup_free_ char *qemu = which("qemu-system-x86_64"), *qemu_img = which("qemu-img");
	_cleanup_free_ char *kernel = find_kernel(), *busybox = NULL, *img = NULL, *wd = NULL, *serial = NULL;
	struct vt t = {0};
	json_t *r = NULL;
	char id[64] = "";
	pid_t qpid;
	int boot_ms = 240000;

	if (argc < 3) {
		fprintf(stderr, "usage: %s dstack-vmm supervisor\n", argv[0]);
		return 2;
	}
	busybox = access("/bin/busybox", X_OK) == 0 ? xstrdup("/bin/busybox") : which("busybox");
	if (!qemu || !qemu_img) {
		printf("1..0 # SKIP qemu-system-x86_64 or qemu-img not installed (Debian qemu-system-x86, "
		       "qemu-utils)\n");
		return 0;
	}
	if (!kernel) {
		printf("1..0 # SKIP no kernel in /boot (Debian linux-image-cloud-amd64)\n");
		return 0;
	}
	if (!busybox || !is_static_elf(busybox)) {
		printf("1..0 # SKIP no static busybox (Debian busybox-static)\n");
		return 0;
	}
	unsigned port = vt_init(&t, argv[1], tmpl);
	diag("qemu %s, kernel %s, busybox %s, %s", qemu, kernel, busybox,
	     access("/dev/kvm", R_OK | W_OK) == 0 ? "KVM" : "TCG (no usable /dev/kvm)");

	/* the image: kernel + initramfs + metadata + digest, no firmware (QEMU's SeaBIOS) */
	img = xasprintf("%s/img/dstack-0.5.3", t.dir);
	{
		_cleanup_free_ char *k = path_join(img, "bzImage"), *i = path_join(img, "initramfs.cpio");
		_cleanup_free_ char *m = path_join(img, "metadata.json"), *dg = path_join(img, "digest.txt");
		_cleanup_free_ char *sums = path_join(img, "sha256sum.txt"),
				    *cfg = path_join(t.dir, "vmm.toml");
		_cleanup_free_ char *run = path_join(t.dir, "run");
		_cleanup_free_ uint8_t *kd = NULL;
		size_t kl = 0;
		uint8_t h[32], hh[32];
		char hex[65];
		const char *meta = "{\"kernel\":\"bzImage\",\"initrd\":\"initramfs.cpio\","
				   "\"cmdline\":\"console=ttyS0 panic=1 quiet\",\"version\":\"0.5.3\","
				   "\"shared_ro\":false,\"is_dev\":true}";
		_cleanup_free_ char *toml = xasprintf(
		    "address = \"tcp:127.0.0.1:%u\"\nrun_path = \"%s/run\"\n"
		    "[image]\npath = \"%s/img\"\n"
		    "[cvm]\nbackend = \"qemu\"\naccel = \"auto\"\nqemu_path = \"%s\"\ncid_start = 32000\n"
		    "cid_pool_size = 4\nqmp_socket = true\n"
		    "[cvm.auto_restart]\nenabled = false\n"
		    "[supervisor]\nexe = \"%s\"\nsock = \"%s/sv.sock\"\npid_file = \"%s/sv.pid\"\n"
		    "log_file = \"%s/sv.log\"\n",
		    port, t.dir, t.dir, qemu, argv[2], t.dir, t.dir, t.dir);

		mkdir_p(img, 0755, NULL);
		mkdir_p(run, 0755, NULL);
		ok(copy_file(kernel, k) == 0, "kernel copied into the image");
		ok(build_initramfs(busybox, i) == 0, "initramfs built from busybox");
		file_write_atomic(m, meta, strlen(meta), 0644, NULL);
		file_read_all(k, 256u << 20, &kd, &kl, NULL);
		SHA256(kd, kl, h);
		hex_encode(h, 32, hex);
		_cleanup_free_ char *line = xasprintf("%s  bzImage\n", hex);
		file_write_atomic(sums, line, strlen(line), 0644, NULL);
		SHA256((const uint8_t *)line, strlen(line), hh);
		hex_encode(hh, 32, hex);
		file_write_atomic(dg, hex, 64, 0644, NULL);
		file_write_atomic(cfg, toml, strlen(toml), 0644, NULL);
	}
	ok(vt_start(&t), "dstack-vmm serve is up");
	ok(vt_call(&t, "ListImages", NULL, &r) == 200 &&
	       !strcmp(
		   json_string_value(json_object_get(json_array_get(json_object_get(r, "images"), 0), "name"))
		       ?: "",
		   "dstack-0.5.3"),
	   "ListImages shows the image");
	json_decref(r);

	/* create (starts at once) */
	{
		const char *compose =
		    "{\"manifest_version\":2,\"name\":\"qemu-test\",\"runner\":\"docker-compose\","
		    "\"docker_compose_file\":\"\"}";
		_cleanup_json_ json_t *j =
		    json_pack("{s:s,s:s,s:s,s:i,s:i,s:i,s:b}", "name", "qemu-test", "image", "dstack-0.5.3",
			      "compose_file", compose, "vcpu", 1, "memory", 256, "disk_size", 1, "no_tee", 1);
		_cleanup_free_ char *body = json_dumps(j, JSON_COMPACT);

		ok(vt_call(&t, "CreateVm", body, &r) == 200 && json_string_value(json_object_get(r, "id")),
		   "CreateVm returns an id");
		snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(r, "id")) ?: "");
		json_decref(r);
	}
	wd = xasprintf("%s/run/%s", t.dir, id);
	serial = path_join(wd, "serial.log");
	ok(wait_marker(serial, 1, boot_ms), "serial.log shows the guest's marker line");
	{
		_cleanup_free_ char *hda = path_join(wd, "hda.img");

		ok(file_exists(hda), "data disk hda.img created with qemu-img");
	}
	ok(vt_wait_status(&t, id, "running", 5000), "status is running");
	qpid = vt_sv_pid(&t, id);
	ok(vt_pid_alive(qpid), "the supervisor's QEMU process is alive (pid %d)", (int)qpid);
	{
		_cleanup_free_ char *p = xasprintf("/proc/%d/cmdline", (int)qpid);
		_cleanup_free_ uint8_t *cmd = NULL;
		size_t len = 0;
		bool kvm = access("/dev/kvm", R_OK | W_OK) == 0;

		file_read_all(p, 1 << 20, &cmd, &len, NULL);
		for (size_t i = 0; i + 1 < len; i++)
			if (!cmd[i])
				cmd[i] = ' ';
		ok(cmd && strstr((char *)cmd, kvm ? "-accel kvm -cpu host" : "-accel tcg -cpu max"),
		   "QEMU runs with %s", kvm ? "KVM" : "TCG");
		ok(cmd && strstr((char *)cmd, "-machine q35,kernel-irqchip=split,hpet=off"),
		   "no-TEE machine (no tdx-guest object)");
		ok(cmd && (access("/dev/vhost-vsock", R_OK | W_OK) == 0) ==
			      (strstr((char *)cmd, "vhost-vsock-pci") != NULL),
		   "vhost-vsock device present exactly when the host has /dev/vhost-vsock");
		ok(cmd && strstr((char *)cmd, "-netdev user,id=net0,"), "user-mode networking");
	}
	{
		_cleanup_free_ char *path = xasprintf("/logs?id=%s&ch=serial", id), *text = NULL;

		ok(vt_get(&t, path, &text, NULL) == 200 && strstr(text, MARKER),
		   "GET /logs?ch=serial has the marker");
	}

	/* graceful shutdown: the guest agent is unreachable here, so the VM is stopped */
	{
		_cleanup_free_ char *b = xasprintf("{\"id\":\"%s\"}", id);

		is_int(vt_call(&t, "ShutdownVm", b, NULL), 200, "ShutdownVm accepted");
		ok(vt_wait_status(&t, id, "stopped", 30000), "after ShutdownVm the VM is stopped");
		ok(!vt_pid_alive(qpid), "its QEMU process is gone");
		is_int(vt_call(&t, "StartVm", b, NULL), 200, "StartVm");
		ok(wait_marker(serial, 2, boot_ms), "second boot prints the marker again");
		ok(vt_wait_status(&t, id, "running", 5000), "running again");
		qpid = vt_sv_pid(&t, id);
		is_int(vt_call(&t, "StopVm", b, NULL), 200, "StopVm");
		ok(vt_wait_status(&t, id, "stopped", 30000), "stopped");
		ok(!vt_pid_alive(qpid), "QEMU process gone after StopVm");
		is_int(vt_call(&t, "RemoveVm", b, NULL), 200, "RemoveVm");
		for (int w = 0; w < 150 && file_exists(wd); w++)
			vt_sleep_ms(200);
		ok(!file_exists(wd), "work directory removed");
		vt_call(&t, "Status", "{}", &r);
		is_int(json_integer_value(json_object_get(r, "total")), 0, "no VMs left");
		json_decref(r);
	}
	is_int(procs_mentioning(wd), 0, "no QEMU process of the VM is left");
	vt_finish(&t);
	free(t.dir);
	free(t.api);
	return tap_done();
}
