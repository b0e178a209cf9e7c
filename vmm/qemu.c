/*
 * qemu.c — see qemu.h. Each numbered block below is the matching step of
 * spec §8; keep them in order, the guest's ACPI tables (and so RTMR0)
 * depend on device order.
 */
#include "vmm/qemu.h"

#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/cleanup.h"
#include "core/fileio.h"
#include "vmm/network.h"

const char *vmm_platform_resolve(const char *platform, const char *cpuinfo_path)
{
	_cleanup_free_ uint8_t *data = NULL;

	if (strcmp(platform, "auto"))
		return platform;
	if (file_read_all(cpuinfo_path, 16u << 20, &data, NULL, NULL) == 0) {
		for (char *p = (char *)data; (p = strstr(p, "sev_snp"));) {
			char before = p == (char *)data ? ' ' : p[-1], after = p[7];

			if ((before == ' ' || before == '\t') &&
			    (after == ' ' || after == '\n' || after == '\0'))
				return "snp";
			p += 7;
		}
	}
	return "tdx";
}

static int gpu_numa_node(const struct vmm_host *h, const char *slot)
{
	_cleanup_free_ char *p = xasprintf("%s/bus/pci/devices/0000:%s/numa_node", h->sysfs, slot);
	_cleanup_free_ uint8_t *d = NULL;
	long n;

	if (file_read_all(p, 64, &d, NULL, NULL) < 0)
		return 0;
	n = strtol((char *)d, NULL, 10);
	return n < 0 || n > 4096 ? 0 : (int)n;
}

int vmm_plan_resources(const struct vmm_manifest *m, const struct vmm_host *host, struct vmm_plan *p,
		       struct err *e)
{
	memset(p, 0, sizeof(*p));
	p->vcpus = m->vcpu ? m->vcpu : 1;
	p->memory_mb = m->memory;
	if (!m->hugepages)
		return 0;
	p->numa = true;
	if (m->has_gpus) {
		const struct strv *lists[2] = {&m->gpus.gpus, &m->gpus.bridges};

		for (int l = 0; l < 2; l++) {
			for (size_t i = 0; i < lists[l]->n; i++) {
				int node = gpu_numa_node(host, lists[l]->v[i]);
				size_t k;

				if (p->n_devices >= ARRAY_SIZE(p->gpu_node))
					return err_set(e, "too many GPUs");
				for (k = 0; k < p->n_nodes && p->host_node[k] != node; k++)
					;
				if (k == p->n_nodes) {
					if (p->n_nodes >= VMM_MAX_NUMA)
						return err_set(e, "too many NUMA nodes");
					p->host_node[p->n_nodes++] = node;
				}
				p->gpu_node[p->n_devices++] = (int)k;
			}
		}
	}
	if (p->n_nodes == 0)
		p->host_node[p->n_nodes++] = 0;
	uint32_t n = (uint32_t)p->n_nodes;
	uint64_t gib = ((uint64_t)m->memory + 1023) / 1024;
	gib = (gib + n - 1) / n * n;
	if (gib * 1024 > UINT32_MAX)
		return err_set(e, "memory too large");
	p->memory_mb = (uint32_t)(gib * 1024);
	p->vcpus = (p->vcpus + n - 1) / n * n;
	return 0;
}

static bool dev_usable(const struct vmm_host *host, const char *name)
{
	_cleanup_free_ char *p = xasprintf("%s/%s", host && host->dev ? host->dev : "/dev", name);
	int fd = open(p, O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return false;
	close(fd);
	return true;
}

const char *vmm_accel_resolve(const char *configured, bool tee, const struct vmm_host *host)
{
	if (tee || !strcmp(configured, "kvm"))
		return "kvm";
	if (!strcmp(configured, "tcg"))
		return "tcg";
	return dev_usable(host, "kvm") ? "kvm" : "tcg";
}

bool vmm_host_has_vhost_vsock(const struct vmm_host *host)
{
	return dev_usable(host, "vhost-vsock");
}

const struct vmm_net *vmm_effective_networks(const struct vmm_config *c, const struct vmm_manifest *m,
					     size_t *n)
{
	if (m->n_networks) {
		*n = m->n_networks;
		return m->networks;
	}
	*n = 1;
	return &c->cvm.networking;
}

/* QEMU option values escape ',' by doubling it. */
static void put_escaped(struct buf *b, const char *s)
{
	for (; *s; s++) {
		if (*s == ',')
			buf_putc(b, ',');
		buf_putc(b, (uint8_t)*s);
	}
}

static void push_buf(struct strv *a, struct buf *b)
{
	strv_push(a, (char *)b->data);
	buf_reset(b);
}

static void add_smbios(const struct vmm_config *c, struct strv *a)
{
	for (int type = 0; type <= 3; type++) {
		struct buf b = BUF_INIT;

		for (int i = 0; i < SMB_COUNT; i++) {
			if (vmm_smbios_fields[i].type != type || str_empty(c->cvm.product[i]))
				continue;
			if (!b.len)
				buf_printf(&b, "type=%d", type);
			buf_printf(&b, ",%s=", vmm_smbios_fields[i].qemu_key);
			put_escaped(&b, c->cvm.product[i]);
		}
		if (b.len) {
			strv_push(a, "-smbios");
			strv_push(a, (char *)b.data);
		}
		buf_free(&b);
	}
}

static int add_nics(const struct vmm_qemu_in *in, struct strv *a, struct err *e)
{
	size_t n;
	const struct vmm_net *nets = vmm_effective_networks(in->cfg, in->m, &n);
	bool fwd_done = false;
	struct buf b = BUF_INIT;

	for (size_t i = 0; i < n; i++) {
		const struct vmm_net *net = &nets[i];
		char mac[18];

		if (vmm_mac_address(in->m->id, i, net->mac_prefix, mac, e) < 0)
			goto fail;
		if (!strcmp(net->mode, "user")) {
			buf_printf(&b, "user,id=net%zu,net=%s,dhcpstart=%s,restrict=%s", i, net->net,
				   net->dhcp_start, net->restrict_ ? "yes" : "no");
			if (!fwd_done) {
				for (size_t k = 0; k < in->m->n_ports; k++) {
					const struct vmm_port_map *p = &in->m->ports[k];

					buf_printf(&b, ",hostfwd=%s:%s:%u-:%u", p->protocol, p->address,
						   p->from, p->to);
				}
				fwd_done = true;
			}
		} else if (!strcmp(net->mode, "bridge")) {
			if (str_empty(net->bridge)) {
				err_set(e, "bridge mode requires a bridge name");
				goto fail;
			}
			buf_printf(&b, "bridge,id=net%zu,br=%s", i, net->bridge);
		} else if (!strcmp(net->mode, "custom")) {
			_cleanup_free_ char *want = xasprintf("id=net%zu", i);

			if (str_empty(net->netdev) || !strstr(net->netdev, want)) {
				err_set(e, "custom netdev must contain %s", want);
				goto fail;
			}
			buf_puts(&b, net->netdev);
		} else {
			err_set(e, "unsupported network mode: %s", net->mode);
			goto fail;
		}
		strv_push(a, "-netdev");
		push_buf(a, &b);
		strv_push(a, "-device");
		strv_pushf(a, "virtio-net-pci,netdev=net%zu,mac=%s", i, mac);
	}
	buf_free(&b);
	return 0;
fail:
	buf_free(&b);
	return -1;
}

static void add_host_share(const struct vmm_qemu_in *in, struct strv *a)
{
	const char *mode = in->cfg->cvm.host_share_mode, *wd = in->workdir;

	if (!strcmp(mode, "vvfat")) {
		strv_push(a, "-blockdev");
		strv_pushf(a, "driver=vvfat,node-name=vvfat0,read-only=on,dir=%s/shared,label=DSTACKSHR", wd);
		strv_push(a, "-device");
		strv_push(a, "virtio-blk-pci,drive=vvfat0");
	} else if (!strcmp(mode, "vhd")) {
		strv_push(a, "-drive");
		strv_pushf(a, "file=%s/shared.img,if=none,id=hd2,format=raw,readonly=on", wd);
		strv_push(a, "-device");
		strv_push(a, "virtio-blk-pci,drive=hd2");
	} else {
		strv_push(a, "-virtfs");
		strv_pushf(
		    a,
		    "local,path=%s/shared,mount_tag=host-shared,readonly=%s,security_model=mapped,id=virtfs0",
		    wd, in->img->shared_ro ? "on" : "off");
	}
}

static void add_numa(const struct vmm_qemu_in *in, struct strv *a)
{
	const struct vmm_plan *p = in->plan;
	uint32_t per_cpu = p->vcpus / (uint32_t)p->n_nodes;
	uint32_t per_gib = p->memory_mb / 1024 / (uint32_t)p->n_nodes;
	uint32_t bus_nr = 5;

	for (size_t i = 0; i < p->n_nodes; i++) {
		uint32_t devices = 0;

		for (size_t d = 0; d < p->n_devices; d++)
			if (p->gpu_node[d] == (int)i)
				devices++;
		strv_push(a, "-numa");
		strv_pushf(a, "node,nodeid=%zu,cpus=%u-%u,memdev=mem%zu", i, (uint32_t)i * per_cpu,
			   (uint32_t)(i + 1) * per_cpu - 1, i);
		strv_push(a, "-object");
		strv_pushf(
		    a,
		    "memory-backend-file,id=mem%zu,size=%uG,mem-path=/dev/hugepages,share=on,prealloc=yes,"
		    "host-nodes=%d,policy=bind",
		    i, per_gib, p->host_node[i]);
		strv_push(a, "-device");
		strv_pushf(a, "pxb-pcie,id=pcie.node%d,bus=pcie.0,addr=%zu,numa_node=%zu,bus_nr=%u",
			   p->host_node[i], 10 + i, i, bus_nr);
		bus_nr += devices + 1;
	}
}

static void add_machine(const struct vmm_qemu_in *in, struct strv *a)
{
	if (!in->tdx) {
		strv_push(a, "-machine");
		strv_push(a, "q35,kernel-irqchip=split,hpet=off");
		return;
	}
	_cleanup_json_ json_t *o = json_object();
	_cleanup_free_ char *s = NULL;

	json_object_set_new(o, "qom-type", json_string("tdx-guest"));
	json_object_set_new(o, "id", json_string("tdx"));
	if (in->mrconfigid_b64)
		json_object_set_new(o, "mrconfigid", json_string(in->mrconfigid_b64));
	if (in->cfg->cvm.has_qgs_port)
		json_object_set_new(o, "quote-generation-socket",
				    json_pack("{s:s,s:s,s:o}", "type", "vsock", "cid", "2", "port",
					      json_sprintf("%u", in->cfg->cvm.qgs_port)));
	s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	strv_push(a, "-machine");
	strv_push(a, "q35,kernel-irqchip=split,confidential-guest-support=tdx,hpet=off");
	strv_push(a, "-object");
	strv_push(a, s);
}

static void add_gpus(const struct vmm_qemu_in *in, struct strv *a)
{
	const struct vmm_manifest *m = in->m;
	const struct strv *lists[2] = {&m->gpus.gpus, &m->gpus.bridges};
	size_t n = 0;

	if (!m->has_gpus || (m->gpus.gpus.n == 0 && m->gpus.bridges.n == 0))
		return;
	strv_push(a, "-object");
	strv_push(a, "iommufd,id=iommufd0");
	for (int l = 0; l < 2; l++) {
		for (size_t i = 0; i < lists[l]->n; i++, n++) {
			_cleanup_free_ char *bus = NULL;

			if (in->plan->numa && n < in->plan->n_devices)
				bus = xasprintf("pcie.node%d", in->plan->host_node[in->plan->gpu_node[n]]);
			else
				bus = xstrdup("pcie.0");
			strv_push(a, "-device");
			strv_pushf(a, "pcie-root-port,id=pci.%zu,bus=%s,chassis=%zu", n + 1, bus, n + 1);
			strv_push(a, "-device");
			strv_pushf(a, "vfio-pci,host=%s,bus=pci.%zu,iommufd=iommufd0", lists[l]->v[i], n + 1);
		}
	}
}

static int numa_cpulist(const struct vmm_qemu_in *in, char **out, struct err *e)
{
	int node = 0;
	_cleanup_free_ char *p = NULL;
	_cleanup_free_ uint8_t *d = NULL;
	size_t len;

	if (in->m->has_gpus && in->m->gpus.gpus.n)
		node = gpu_numa_node(in->host, in->m->gpus.gpus.v[0]);
	p = xasprintf("%s/devices/system/node/node%d/cpulist", in->host->sysfs, node);
	if (file_read_all(p, 4096, &d, &len, e) < 0)
		return err_wrap(e, "pin_numa");
	while (len && (d[len - 1] == '\n' || d[len - 1] == ' '))
		d[--len] = '\0';
	*out = xstrdup((char *)d);
	return 0;
}

int vmm_qemu_argv(const struct vmm_qemu_in *in, struct strv *out, struct err *e)
{
	const struct vmm_config *c = in->cfg;
	const struct vmm_image *img = in->img;
	const struct vmm_manifest *m = in->m;
	const char *wd = in->workdir;
	struct strv a = {0};

	/* wrappers: sudo -u <user> (outermost), taskset -c <cpus> */
	if (!str_empty(c->cvm.user)) {
		strv_push(&a, "sudo");
		strv_push(&a, "-u");
		strv_push(&a, c->cvm.user);
	}
	if (m->pin_numa) {
		_cleanup_free_ char *cpus = NULL;

		if (numa_cpulist(in, &cpus, e) < 0)
			goto fail;
		strv_push(&a, "taskset");
		strv_push(&a, "-c");
		strv_push(&a, cpus);
	}
	/* 1 */
	bool tcg = in->accel && !strcmp(in->accel, "tcg");
	strv_push(&a, in->qemu_path);
	strv_push(&a, "-accel");
	strv_push(&a, tcg ? "tcg" : "kvm");
	strv_push(&a, "-cpu");
	strv_push(&a, tcg ? "max" : "host");
	strv_push(&a, "-nographic");
	strv_push(&a, "-nodefaults");
	/* 2 */
	strv_push(&a, "-chardev");
	strv_pushf(&a, "pty,id=com0,path=%s/serial.pty,logfile=%s/serial.log,logappend=on", wd, wd);
	strv_push(&a, "-serial");
	strv_push(&a, "chardev:com0");
	/* 3 */
	if (c->cvm.qmp_socket) {
		strv_push(&a, "-qmp");
		strv_pushf(&a, "unix:%s/qmp.sock,server,wait=off", wd);
	}
	/* 4, 5 */
	if (img->bios) {
		strv_push(&a, "-bios");
		strv_push(&a, img->bios);
	}
	strv_push(&a, "-kernel");
	strv_push(&a, img->kernel);
	strv_push(&a, "-initrd");
	strv_push(&a, img->initrd);
	/* 6 */
	if (c->cvm.qemu_hotplug_off) {
		strv_push(&a, "-global");
		strv_push(&a, "ICH9-LPC.acpi-pci-hotplug-with-bridge-support=off");
	}
	if (c->cvm.qemu_pci_hole64_size > 0) {
		strv_push(&a, "-global");
		strv_pushf(&a, "q35-pcihost.pci-hole64-size=0x%llx",
			   (unsigned long long)c->cvm.qemu_pci_hole64_size);
	}
	/* 7 */
	if (img->rootfs) {
		if (img->rootfs_is_iso) {
			strv_push(&a, "-cdrom");
			strv_push(&a, img->rootfs);
		} else {
			strv_push(&a, "-drive");
			strv_pushf(&a, "file=%s,if=none,id=hd0,format=raw,readonly=on", img->rootfs);
			strv_push(&a, "-device");
			strv_push(&a, "virtio-blk-pci,drive=hd0");
		}
	}
	/* 8 */
	strv_push(&a, "-drive");
	strv_pushf(&a, "file=%s/hda.img,if=none,id=hd1", wd);
	strv_push(&a, "-device");
	strv_push(&a, "virtio-blk-pci,drive=hd1");
	/* 9 */
	for (size_t i = 0; i < m->volumes.n; i++) {
		strv_push(&a, "-drive");
		strv_pushf(&a, "file=%s,if=none,id=vol%zu,format=raw,readonly=on", m->volumes.v[i], i);
		strv_push(&a, "-device");
		strv_pushf(&a, "virtio-blk-pci,drive=vol%zu", i);
	}
	/* 10 */
	if (add_nics(in, &a, e) < 0)
		goto fail;
	/* 11 */
	add_smbios(c, &a);
	/* 12 */
	if (m->swtpm) {
		strv_push(&a, "-chardev");
		strv_pushf(&a, "socket,id=chrtpm,path=%s/swtpm/swtpm.sock", wd);
		strv_push(&a, "-tpmdev");
		strv_push(&a, "emulator,id=tpm0,chardev=chrtpm");
		strv_push(&a, "-device");
		strv_push(&a, "tpm-tis,tpmdev=tpm0");
	}
	/* 13 */
	if (!in->no_vsock) {
		strv_push(&a, "-device");
		strv_pushf(&a, "vhost-vsock-pci,guest-cid=%u", in->cid);
	}
	/* 14 */
	add_host_share(in, &a);
	/* 15 */
	if (in->plan->numa)
		add_numa(in, &a);
	/* 16 */
	add_machine(in, &a);
	/* 17 */
	add_gpus(in, &a);
	/* 18 */
	strv_push(&a, "-smp");
	strv_pushf(&a, "%u", in->plan->vcpus);
	strv_push(&a, "-m");
	strv_pushf(&a, "%uM", in->plan->memory_mb);
	if (!str_empty(img->cmdline)) {
		strv_push(&a, "-append");
		strv_push(&a, img->cmdline);
	}
	*out = a;
	return 0;
fail:
	strv_free(&a);
	return -1;
}

void vmm_qemu_img_create_argv(const char *workdir, const char *backing, uint32_t disk_gb, struct strv *a)
{
	memset(a, 0, sizeof(*a));
	strv_push(a, "qemu-img");
	strv_push(a, "create");
	strv_push(a, "-f");
	strv_push(a, "qcow2");
	if (backing) {
		strv_push(a, "-o");
		strv_pushf(a, "backing_file=%s", backing);
		strv_push(a, "-o");
		strv_push(a, "backing_fmt=qcow2");
	}
	strv_pushf(a, "%s/hda.img", workdir);
	strv_pushf(a, "%uG", disk_gb);
}

json_t *vmm_process_config(const struct vmm_manifest *m, const char *workdir, uint32_t cid,
			   const struct strv *argv)
{
	json_t *args = json_array();

	for (size_t i = 1; i < argv->n; i++)
		json_array_append_new(args, json_string(argv->v[i]));
	return json_pack(
	    "{s:s,s:s,s:s,s:o,s:{},s:s,s:o,s:o,s:o,s:i,s:s}", "id", m->id, "name", m->name, "command",
	    argv->v[0], "args", args, "env", "cwd", workdir, "stdout", json_sprintf("%s/stdout.log", workdir),
	    "stderr", json_sprintf("%s/stderr.log", workdir), "pidfile", json_sprintf("%s/qemu.pid", workdir),
	    "cid", (int)cid, "note", "{\"kind\":\"cvm\",\"live_for\":null,\"serial_logappend\":true}");
}

char *vmm_qemu_version_parse(const char *out)
{
	size_t line = strcspn(out, "\n");
	const char *v = NULL;

	for (const char *p = out; p + 7 <= out + line; p++) {
		if (!strncmp(p, "version", 7) && (p == out || p[-1] == ' ') && p[7] == ' ') {
			v = p + 8;
			break;
		}
	}
	if (!v)
		return NULL;
	while (*v == ' ')
		v++;
	size_t n = strcspn(v, " +\n(");
	if (!n)
		return NULL;
	return strndup(v, n);
}

char *vmm_qemu_version_detect(const char *qemu_path)
{
	int pipefd[2];
	char buf[512];
	size_t len = 0;
	ssize_t n;
	pid_t pid;

	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return NULL;
	pid = fork();
	if (pid < 0) {
		close(pipefd[0]);
		close(pipefd[1]);
		return NULL;
	}
	if (pid == 0) {
		dup2(pipefd[1], 1);
		execlp(qemu_path, qemu_path, "--version", (char *)NULL);
		_exit(127);
	}
	close(pipefd[1]);
	while (len < sizeof(buf) - 1 && (n = read(pipefd[0], buf + len, sizeof(buf) - 1 - len)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		len += (size_t)n;
	}
	buf[len] = '\0';
	close(pipefd[0]);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	return vmm_qemu_version_parse(buf);
}

char *vmm_qemu_path_resolve(const char *configured, const char *client_conf)
{
	_cleanup_free_ uint8_t *ini = NULL;
	bool in_qemu = false;

	if (!str_empty(configured))
		return xstrdup(configured);
	if (client_conf && file_read_all(client_conf, 1 << 20, &ini, NULL, NULL) == 0) {
		for (char *line = (char *)ini, *next; line; line = next) {
			next = strchr(line, '\n');
			if (next)
				*next++ = '\0';
			while (*line == ' ' || *line == '\t')
				line++;
			if (*line == '[') {
				in_qemu = !strncmp(line, "[qemu]", 6);
				continue;
			}
			if (!in_qemu || strncmp(line, "path", 4))
				continue;
			char *v = line + 4;
			while (*v == ' ' || *v == '\t')
				v++;
			if (*v != '=')
				continue;
			v++;
			while (*v == ' ' || *v == '\t')
				v++;
			size_t l = strlen(v);
			while (l && (v[l - 1] == ' ' || v[l - 1] == '\r' || v[l - 1] == '\t'))
				v[--l] = '\0';
			if (l >= 2 && (v[0] == '"' || v[0] == '\'') && v[l - 1] == v[0]) {
				v[l - 1] = '\0';
				v++;
			}
			if (*v)
				return xstrdup(v);
		}
	}
	return xstrdup("qemu-system-x86_64");
}
