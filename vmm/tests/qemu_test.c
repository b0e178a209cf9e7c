/*
 * qemu_test.c — the QEMU command line (§8) pinned by golden files: a TDX
 * VM, a no-TEE VM and a GPU+hugepages/NUMA VM, plus targeted fragments.
 * Golden files hold one argument per line. VMM_GOLDEN_UPDATE=1 rewrites
 * them; without it any difference fails.
 */
#include "core/buf.h"
#include "core/cleanup.h"
#include "core/tap.h"
#include "testutil.h"
#include "vmm/network.h"
#include "vmm/qemu.h"
#include "vmm/sysconfig.h"

static void image_fixture(struct vmm_image *img)
{
	memset(img, 0, sizeof(*img));
	img->name = xstrdup("dstack-0.5.3");
	img->dir = xstrdup("/images/dstack-0.5.3");
	img->kernel = xstrdup("/images/dstack-0.5.3/bzImage");
	img->initrd = xstrdup("/images/dstack-0.5.3/initramfs.cpio.gz");
	img->bios = xstrdup("/images/dstack-0.5.3/ovmf.fd");
	img->rootfs = xstrdup("/images/dstack-0.5.3/rootfs.img.verity");
	img->cmdline = xstrdup("console=ttyS0 init=/init panic=1");
	img->shared_ro = true;
	img->has_version = true;
	img->version = (struct vmm_version){0, 5, 3};
}

static void manifest_fixture(struct vmm_manifest *m, const char *id)
{
	memset(m, 0, sizeof(*m));
	m->id = xstrdup(id);
	m->name = xstrdup("app");
	m->app_id = xstrdup("5bb4ff9a3837357f19dc176407a5709c62eb6c56");
	m->vcpu = 2;
	m->memory = 2048;
	m->disk_size = 20;
	m->image = xstrdup("dstack-0.5.3");
}

static bool check_golden(const char *name, const struct strv *argv)
{
	const char *dir = getenv("VMM_GOLDEN_DIR");
	_cleanup_free_ char *path = NULL, *want = NULL;
	struct buf b = BUF_INIT;
	bool same;

	if (!dir)
		dir = "vmm/tests/golden";
	path = path_join(dir, name);
	for (size_t i = 0; i < argv->n; i++)
		buf_printf(&b, "%s\n", argv->v[i]);
	if (getenv("VMM_GOLDEN_UPDATE")) {
		file_write_atomic(path, b.data, b.len, 0644, NULL);
		diag("updated %s", path);
	}
	want = tu_read(dir, name);
	same = want && !strcmp(want, (char *)b.data);
	if (!same)
		diag("golden %s differs; got:\n%s", name, (char *)b.data);
	buf_free(&b);
	return same;
}

static const char *find_after(const struct strv *a, const char *flag, size_t nth)
{
	for (size_t i = 0; i + 1 < a->n; i++)
		if (!strcmp(a->v[i], flag) && nth-- == 0)
			return a->v[i + 1];
	return NULL;
}

static void test_tdx(void)
{
	struct vmm_config c;
	struct vmm_image img;
	struct vmm_manifest m;
	struct vmm_plan plan;
	struct vmm_host host = {"/nonexistent", NULL};
	struct strv a;
	struct err e = ERR_INIT;
	uint8_t h[32], id[48];

	vmm_config_init(&c);
	image_fixture(&img);
	manifest_fixture(&m, "4b0bb1a8-8c1c-4c3e-9d51-6b3f1a2f9e10");
	struct vmm_port_map ports[] = {{"127.0.0.1", "tcp", 8080, 80}, {"0.0.0.0", "udp", 5353, 53}};
	vmm_manifest_set_ports(&m, ports, 2);
	c.cvm.qmp_socket = true;
	sha256_buf("{}", 2, h);
	vmm_mrconfigid_v1(h, id);
	_cleanup_free_ char *b64 = base64_encode_alloc(id, 48);
	ok(vmm_plan_resources(&m, &host, &plan, &e) == 0, "plan");
	struct vmm_qemu_in in = {&c,
				 &img,
				 &m,
				 &plan,
				 &host,
				 "/var/lib/dstack/vm/4b0bb1a8-8c1c-4c3e-9d51-6b3f1a2f9e10",
				 "/usr/bin/qemu-system-x86_64",
				 1000,
				 true,
				 b64,
				 NULL,
				 false};
	ok(vmm_qemu_argv(&in, &a, &e) == 0, "tdx argv: %s", e.msg);
	ok(check_golden("tdx.argv", &a), "TDX VM argv matches golden");
	const char *obj = find_after(&a, "-object", 0);
	_cleanup_free_ char *want_obj =
	    xasprintf("{\"qom-type\":\"tdx-guest\",\"id\":\"tdx\",\"mrconfigid\":\"%s\","
		      "\"quote-generation-socket\":{\"type\":\"vsock\",\"cid\":\"2\","
		      "\"port\":\"4050\"}}",
		      b64);
	is_str(obj, want_obj, "tdx-guest object JSON");
	const char *nd = find_after(&a, "-netdev", 0);
	is_str(nd,
	       "user,id=net0,net=10.0.2.0/24,dhcpstart=10.0.2.10,restrict=no,hostfwd=tcp:127.0.0.1:8080-:80,"
	       "hostfwd=udp:0.0.0.0:5353-:53",
	       "hostfwd on the user NIC");
	is_str(find_after(&a, "-smbios", 0), "type=1,manufacturer=dstack,product=dstack", "default smbios");
	strv_free(&a);

	/* no qgs port, no mrconfigid: keys omitted */
	c.cvm.has_qgs_port = false;
	in.mrconfigid_b64 = NULL;
	ok(vmm_qemu_argv(&in, &a, &e) == 0, "argv without qgs");
	is_str(find_after(&a, "-object", 0), "{\"qom-type\":\"tdx-guest\",\"id\":\"tdx\"}",
	       "unset keys omitted");
	strv_free(&a);

	/* Second NIC user: hostfwd only on the first user NIC; bridge NIC first. */
	struct vmm_net nets[] = {{"bridge", "br0", "", "", "", false, ""},
				 {"user", "", "", "10.0.2.0/24", "10.0.2.10", true, ""},
				 {"user", "", "", "10.0.3.0/24", "10.0.3.10", false, ""}};
	vmm_manifest_set_networks(&m, nets, 3);
	ok(vmm_qemu_argv(&in, &a, &e) == 0, "multi-NIC argv");
	is_str(find_after(&a, "-netdev", 0), "bridge,id=net0,br=br0", "bridge netdev");
	ok(strstr(find_after(&a, "-netdev", 1), ",hostfwd=") != NULL, "hostfwd on first user NIC");
	ok(strstr(find_after(&a, "-netdev", 2), "hostfwd") == NULL, "not on later user NICs");
	is_str(find_after(&a, "-netdev", 1),
	       "user,id=net1,net=10.0.2.0/24,dhcpstart=10.0.2.10,restrict=yes,"
	       "hostfwd=tcp:127.0.0.1:8080-:80,hostfwd=udp:0.0.0.0:5353-:53",
	       "user NIC 1");
	char mac[18];
	vmm_mac_address(m.id, 2, "", mac, NULL);
	_cleanup_free_ char *dev2 = xasprintf("virtio-net-pci,netdev=net2,mac=%s", mac);
	is_str(find_after(&a, "-device", 4), dev2, "per-NIC MAC");
	strv_free(&a);
	struct vmm_net custom[] = {{"custom", "", "", "", "", false, "tap,id=net1,ifname=x"}};
	vmm_manifest_set_networks(&m, custom, 1);
	ok(vmm_qemu_argv(&in, &a, &e) < 0, "custom netdev must name id=net<i>");

	vmm_manifest_free(&m);
	vmm_image_free(&img);
	vmm_config_free(&c);
}

static void test_notee(void)
{
	struct vmm_config c;
	struct vmm_image img;
	struct vmm_manifest m;
	struct vmm_plan plan;
	struct vmm_host host = {"/nonexistent", NULL};
	struct strv a;
	struct err e = ERR_INIT;

	vmm_config_init(&c);
	image_fixture(&img);
	img.shared_ro = false;
	manifest_fixture(&m, "vm-notee");
	m.vcpu = 0;
	m.no_tee = true;
	m.swtpm = true;
	strv_push(&m.volumes, "/vols/models.img");
	c.cvm.qemu_hotplug_off = true;
	c.cvm.qemu_pci_hole64_size = 1ull << 40;
	str_set(&c.cvm.user, "dstack");
	str_set(&c.cvm.product[SMB_BIOS_VENDOR], "ACME, Inc");
	str_set(&c.cvm.product[SMB_CHASSIS_SERIAL], "C1");
	vmm_plan_resources(&m, &host, &plan, &e);
	struct vmm_qemu_in in = {&c,   &img,  &m,   &plan, &host, "/run/vm/vm-notee", "qemu-system-x86_64",
				 1001, false, NULL, NULL,  false};
	ok(vmm_qemu_argv(&in, &a, &e) == 0, "no-TEE argv: %s", e.msg);
	ok(check_golden("notee.argv", &a), "no-TEE VM argv matches golden");
	ok(a.n > 3 && !strcmp(a.v[0], "sudo") && !strcmp(a.v[2], "dstack") &&
	       !strcmp(a.v[3], "qemu-system-x86_64"),
	   "sudo -u wrapper outermost");
	is_str(find_after(&a, "-machine", 0), "q35,kernel-irqchip=split,hpet=off", "no-TEE machine");
	is_str(find_after(&a, "-smp", 0), "1", "vcpu 0 becomes 1");
	is_str(find_after(&a, "-smbios", 0), "type=0,vendor=ACME,, Inc", "type 0 with escaped comma");
	strv_free(&a);

	str_set(&c.cvm.host_share_mode, "vvfat");
	ok(vmm_qemu_argv(&in, &a, &e) == 0, "vvfat");
	is_str(find_after(&a, "-blockdev", 0),
	       "driver=vvfat,node-name=vvfat0,read-only=on,dir=/run/vm/vm-notee/shared,label=DSTACKSHR",
	       "vvfat share");
	strv_free(&a);
	str_set(&c.cvm.host_share_mode, "vhd");
	ok(vmm_qemu_argv(&in, &a, &e) == 0, "vhd");
	ok(strstr(a.v[a.n - 1], "panic=1") != NULL, "cmdline last");
	bool found = false;
	for (size_t i = 0; i < a.n; i++)
		found |=
		    !strcmp(a.v[i], "file=/run/vm/vm-notee/shared.img,if=none,id=hd2,format=raw,readonly=on");
	ok(found, "vhd share drive");
	strv_free(&a);

	/* Hosts without KVM or vhost-vsock (extension): TCG CPU model, no vsock device. */
	str_set(&c.cvm.host_share_mode, "9p");
	in.accel = "tcg";
	in.no_vsock = true;
	ok(vmm_qemu_argv(&in, &a, &e) == 0, "tcg argv");
	is_str(find_after(&a, "-accel", 0), "tcg", "-accel tcg");
	is_str(find_after(&a, "-cpu", 0), "max", "-cpu max under TCG");
	found = false;
	for (size_t i = 0; i < a.n; i++)
		found |= !strncmp(a.v[i], "vhost-vsock-pci", 15);
	ok(!found, "no vhost-vsock-pci device without vsock");
	strv_free(&a);
	in.accel = "kvm";
	in.no_vsock = false;
	ok(vmm_qemu_argv(&in, &a, &e) == 0, "kvm argv");
	is_str(find_after(&a, "-cpu", 0), "host", "-cpu host under KVM");
	strv_free(&a);

	struct strv qi;
	vmm_qemu_img_create_argv("/run/vm/x", "/images/i/hda.qcow2", 20, &qi);
	_cleanup_free_ char *j = strv_join(&qi, " ");
	is_str(j,
	       "qemu-img create -f qcow2 -o backing_file=/images/i/hda.qcow2 -o backing_fmt=qcow2 "
	       "/run/vm/x/hda.img 20G",
	       "qemu-img with backing file");
	strv_free(&qi);

	vmm_manifest_free(&m);
	vmm_image_free(&img);
	vmm_config_free(&c);
}

static void test_gpu_numa(void)
{
	struct vmm_config c;
	struct vmm_image img;
	struct vmm_manifest m;
	struct vmm_plan plan;
	char *sys = tu_tmpdir();
	struct vmm_host host = {sys, NULL};
	struct strv a;
	struct err e = ERR_INIT;

	tu_write(sys, "bus/pci/devices/0000:18:00.0/numa_node", "0\n");
	tu_write(sys, "bus/pci/devices/0000:9a:00.0/numa_node", "1\n");
	tu_write(sys, "bus/pci/devices/0000:05:00.0/numa_node", "-1\n");
	tu_write(sys, "devices/system/node/node0/cpulist", "0-15,32-47\n");
	vmm_config_init(&c);
	image_fixture(&img);
	manifest_fixture(&m, "vm-gpu");
	m.vcpu = 3;
	m.memory = 5000;
	m.hugepages = true;
	m.pin_numa = true;
	m.has_gpus = true;
	strcpy(m.gpus.attach_mode, "listed");
	strv_push(&m.gpus.gpus, "18:00.0");
	strv_push(&m.gpus.gpus, "9a:00.0");
	strv_push(&m.gpus.bridges, "05:00.0");
	ok(vmm_plan_resources(&m, &host, &plan, &e) == 0, "plan");
	is_int(plan.n_nodes, 2, "two NUMA nodes (-1 counts as 0)");
	is_int(plan.vcpus, 4, "vcpus rounded to node multiple");
	is_int(plan.memory_mb, 6144, "5000 MB -> 5 GiB -> 6 GiB (node multiple)");
	struct vmm_qemu_in in = {&c,     &img, &m,   &plan, &host, "/run/vm/vm-gpu",
				 "qemu", 1002, true, NULL,  NULL,  false};
	ok(vmm_qemu_argv(&in, &a, &e) == 0, "gpu argv: %s", e.msg);
	ok(check_golden("gpu-numa.argv", &a), "GPU+NUMA VM argv matches golden");
	ok(!strcmp(a.v[0], "taskset") && !strcmp(a.v[2], "0-15,32-47"), "taskset with node-0 cpulist");
	strv_free(&a);

	m.hugepages = false;
	m.pin_numa = false;
	vmm_plan_resources(&m, &host, &plan, &e);
	ok(!plan.numa && plan.memory_mb == 5000 && plan.vcpus == 3, "no hugepages: no rounding");
	ok(vmm_qemu_argv(&in, &a, &e) == 0, "gpu argv without numa");
	is_str(find_after(&a, "-device", 4), "pcie-root-port,id=pci.1,bus=pcie.0,chassis=1",
	       "GPUs on pcie.0");
	strv_free(&a);

	json_t *pc =
	    vmm_process_config(&m, "/run/vm/vm-gpu", 1002, &(struct strv){(char *[]){"qemu", "-m", NULL}, 2});
	_cleanup_free_ char *pcs = json_dumps(pc, JSON_COMPACT | JSON_SORT_KEYS);
	is_str(pcs,
	       "{\"args\":[\"-m\"],\"cid\":1002,\"command\":\"qemu\",\"cwd\":\"/run/vm/"
	       "vm-gpu\",\"env\":{},\"id\":\"vm-gpu\","
	       "\"name\":\"app\",\"note\":\"{\\\"kind\\\":\\\"cvm\\\",\\\"live_for\\\":null,\\\"serial_"
	       "logappend\\\":true}\","
	       "\"pidfile\":\"/run/vm/vm-gpu/qemu.pid\",\"stderr\":\"/run/vm/vm-gpu/stderr.log\","
	       "\"stdout\":\"/run/vm/vm-gpu/stdout.log\"}",
	       "supervisor ProcessConfig");
	json_decref(pc);

	vmm_manifest_free(&m);
	vmm_image_free(&img);
	vmm_config_free(&c);
	tu_rmrf(sys);
}

static void test_accel(void)
{
	char *d = tu_tmpdir();
	struct vmm_host h = {"/nonexistent", d};

	is_str(vmm_accel_resolve("auto", false, &h), "tcg", "auto without <dev>/kvm is tcg");
	is_str(vmm_accel_resolve("auto", true, &h), "kvm", "TEE VMs always kvm");
	is_str(vmm_accel_resolve("kvm", false, &h), "kvm", "configured kvm");
	is_str(vmm_accel_resolve("tcg", false, &h), "tcg", "configured tcg");
	ok(!vmm_host_has_vhost_vsock(&h), "no <dev>/vhost-vsock");
	tu_write(d, "kvm", "");
	tu_write(d, "vhost-vsock", "");
	is_str(vmm_accel_resolve("auto", false, &h), "kvm", "auto with a usable <dev>/kvm is kvm");
	ok(vmm_host_has_vhost_vsock(&h), "usable <dev>/vhost-vsock");
	tu_rmrf(d);
}

static void test_platform(void)
{
	char *d = tu_tmpdir();
	_cleanup_free_ char *p = path_join(d, "cpuinfo");

	tu_write(d, "cpuinfo", "flags\t: fpu sev sev_es sev_snp\n");
	is_str(vmm_platform_resolve("auto", p), "snp", "sev_snp flag -> snp");
	tu_write(d, "cpuinfo", "flags\t: fpu tdx_guest sev_snpx\n");
	is_str(vmm_platform_resolve("auto", p), "tdx", "otherwise tdx");
	is_str(vmm_platform_resolve("tdx", p), "tdx", "explicit");
	tu_rmrf(d);
}

static void test_qemu_discovery(void)
{
	char *d = tu_tmpdir();
	_cleanup_free_ char *v1 =
	    vmm_qemu_version_parse("QEMU emulator version 8.2.2 (Debian 1:8.2.2+ds-0ubuntu1)\nCopyright");
	is_str(v1, "8.2.2", "version word");
	_cleanup_free_ char *v2 = vmm_qemu_version_parse("QEMU emulator version 9.0.0+tdx\n");
	is_str(v2, "9.0.0", "cut at +");
	ok(vmm_qemu_version_parse("nothing here\nversion 1.0") == NULL, "first line only");
	_cleanup_free_ char *fake = path_join(d, "q.sh");
	tu_write(d, "q.sh", "#!/bin/sh\necho 'QEMU emulator version 7.2.5 (x)'\n");
	chmod(fake, 0755);
	_cleanup_free_ char *v3 = vmm_qemu_version_detect(fake);
	is_str(v3, "7.2.5", "detected from --version");
	ok(vmm_qemu_version_detect("/nonexistent/qemu") == NULL, "missing binary");
	_cleanup_free_ char *conf = path_join(d, "client.conf");
	tu_write(d, "client.conf",
		 "[other]\npath = /no\n[qemu]\n  path = \"/opt/qemu/bin/qemu-system-x86_64\"\n");
	_cleanup_free_ char *p1 = vmm_qemu_path_resolve("", conf);
	is_str(p1, "/opt/qemu/bin/qemu-system-x86_64", "[qemu] path from client.conf");
	_cleanup_free_ char *p2 = vmm_qemu_path_resolve("/usr/bin/qemu", conf);
	is_str(p2, "/usr/bin/qemu", "configured path wins");
	_cleanup_free_ char *none = path_join(d, "none.conf");
	_cleanup_free_ char *p3 = vmm_qemu_path_resolve(NULL, none);
	is_str(p3, "qemu-system-x86_64", "fallback to PATH");
	tu_rmrf(d);
}

int main(void)
{
	test_qemu_discovery();
	test_tdx();
	test_notee();
	test_gpu_numa();
	test_platform();
	test_accel();
	return tap_done();
}
