/*
 * main.c — the `dstack-vmm` program (spec §1): `serve` (default) runs the
 * external HTTP server (console, Vmm pRPC, logs) and the guest-facing host
 * API; `check-config` validates vmm.toml; `run` starts one VM from a
 * VmConfiguration JSON; the hidden `vm-launcher` (swtpm + QEMU) and
 * `process-vm` (the process backend's guest) are run by the supervisor.
 */
#include <event2/event.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config/config.h"
#include "core/cleanup.h"
#include "core/fileio.h"
#include "core/log.h"
#include "http/listen.h"
#include "vmm/backend/process.h"
#include "vmm/config.h"
#include "vmm/launcher.h"
#include "vmm/rpc/discovery.h"
#include "vmm/rpc/rpc.h"
#include "vmm/util.h"

#ifndef DSTACK_GIT_REV
#define DSTACK_GIT_REV "unknown"
#endif

static void usage(void)
{
	fprintf(
	    stderr,
	    "usage: dstack-vmm [-c FILE] [serve | check-config | run VM.json [--workdir D] [--dry-run]]\n");
}

static char *self_exe(void)
{
	char buf[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);

	if (n <= 0)
		return xstrdup("dstack-vmm");
	buf[n] = 0;
	return xstrdup(buf);
}

/* [cvm] backend and process_netns are read from the same layers; vmm/config.c ignores them. */
static char *backend_mode(const char *file, bool *shared_net, struct err *e)
{
	struct config c = CONFIG_INIT;
	struct config_search s = {.name = "vmm", .file = file};
	const char *v;
	char *out;

	if (config_load(&c, &s, e) < 0)
		return NULL;
	v = json_string_value(config_get(&c, "cvm.backend"));
	out = xstrdup(v ? v : "auto");
	if (shared_net)
		*shared_net = json_is_false(config_get(&c, "cvm.process_netns"));
	config_free(&c);
	if (strcmp(out, "auto") && strcmp(out, "process") && strcmp(out, "qemu")) {
		err_set(e, "cvm.backend: expected auto, process or qemu, got %s", out);
		free(out);
		return NULL;
	}
	return out;
}

/* The supervisor binary: the configured one, else the one installed next to dstack-vmm. */
static char *supervisor_exe(const struct vmm_config *cfg, const char *self)
{
	_cleanup_free_ char *dir = xstrdup(self);
	char *slash = strrchr(dir, '/');

	if (access(cfg->supervisor.exe, X_OK) == 0)
		return xstrdup(cfg->supervisor.exe);
	if (slash)
		*slash = 0;
	return xasprintf("%s/supervisor", dir);
}

/* mkdir -p the directory holding `file` (nothing for a bare name). */
static int make_parent(const char *file, mode_t mode, struct err *e)
{
	_cleanup_free_ char *dir = xstrdup(file);
	char *slash = strrchr(dir, '/');

	if (!slash || slash == dir)
		return 0;
	*slash = 0;
	return mkdir_p(dir, mode, e);
}

/*
 * A fresh directory must be enough to start: create what the config names
 * but nobody else creates. The supervisor's socket, pid and log directories
 * are private (0700: the socket runs arbitrary commands as this user); the
 * VM and image directories and a unix API socket's directory are 0755.
 * Existing directories keep their modes.
 */
static int make_run_dirs(const struct vmm_config *cfg, const struct http_listen_spec *api, struct err *e)
{
	const char *private_files[] = {cfg->supervisor.sock, cfg->supervisor.pid_file,
				       cfg->supervisor.log_file};

	for (size_t i = 0; i < sizeof(private_files) / sizeof(private_files[0]); i++)
		if (make_parent(private_files[i], 0700, e) < 0)
			return err_wrap(e, "supervisor directory");
	if (mkdir_p(cfg->run_path, 0755, e) < 0 || mkdir_p(cfg->image_path, 0755, e) < 0)
		return err_wrap(e, "run_path / image.path");
	if (api->kind == HTTP_LISTEN_UNIX && make_parent(api->path, 0755, e) < 0)
		return err_wrap(e, "API socket directory");
	return 0;
}

struct serve_ctx {
	struct vmm_app *app;
	struct vmm_proc_backend *proc;
	struct event *tick;
	uint64_t last_rotate;
};

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct serve_ctx *s = arg;
	uint64_t now = (uint64_t)time(NULL);
	uint64_t every = s->app->cfg->cvm.log.check_interval_secs;
	bool rotate = every && now - s->last_rotate >= every;

	(void)fd, (void)what;
	if (rotate)
		s->last_rotate = now;
	vmm_app_tick(s->app, now, rotate);
	vmm_proc_gc(s->proc, s->app);
}

static bool loopback_address(const struct http_listen_spec *sp)
{
	return sp->kind != HTTP_LISTEN_TCP || !strcmp(sp->host, "127.0.0.1") || !strcmp(sp->host, "::1") ||
	       !strcmp(sp->host, "localhost");
}

static int serve(const char *file, struct vmm_config *cfg)
{
	struct err e = ERR_INIT;
	_cleanup_free_ char *self = self_exe(), *sv_exe = NULL, *disc = NULL;
	_cleanup_free_ char *app_version = xasprintf("v%s (git:%s)", VMM_VERSION, DSTACK_GIT_REV);
	struct vmm_app app;
	struct vmm_rpc rpc;
	struct vmm_registry registry;
	struct vmm_proc_backend proc = {0};
	struct event_base *base = NULL;
	struct http_server *srv = NULL, *host_srv = NULL;
	struct vmm_host_api vsock_api;
	struct http_listen_spec spec;
	struct serve_ctx sc = {0};
	struct timeval one_s = {1, 0};
	uint16_t port = 0;
	char cwd[PATH_MAX];
	int rc = 1;
	struct vmm_proc_config pcfg;

	if (vmm_proc_config_load(file, &pcfg, &e) < 0)
		goto out_early;
	if (http_listen_parse(cfg->address, &spec, &e) < 0) {
		err_wrap(&e, "address");
		goto out_early;
	}
	if (make_run_dirs(cfg, &spec, &e) < 0)
		goto out_early;
	sv_exe = supervisor_exe(cfg, self);
	struct sv_client svc = {cfg->supervisor.sock, 10000};
	if (sv_client_ensure_running(&svc, sv_exe, cfg->supervisor.pid_file, cfg->supervisor.log_file,
				     cfg->supervisor.detached, cfg->supervisor.auto_start, &e) < 0) {
		err_wrap(&e, "supervisor");
		goto out_early;
	}
	vmm_app_init(&app, cfg, cfg->supervisor.sock);
	app.self_exe = xstrdup(self);
	vmm_registry_init(&registry, cfg->image_registry, cfg->image_path);
	rpc = (struct vmm_rpc){&app, cfg, app_version, &registry};
	base = event_base_new();
	if (!base)
		abort();
	proc = (struct vmm_proc_backend){.rpc = &rpc, .base = base, .pc = &pcfg, .self_exe = self};
	app.launch_hook = vmm_proc_launch;
	app.create_check_hook = vmm_proc_create_check;
	app.launch_hook_arg = &proc;

	srv = http_server_new(base, NULL, &e);
	if (!srv || vmm_rpc_mount(srv, &rpc, &e) < 0 || http_server_listen(srv, &spec, NULL, &port, &e) < 0) {
		err_wrap(&e, "API listener %s", cfg->address);
		goto out;
	}
	if (cfg->auth.enabled == false && !loopback_address(&spec))
		log_warn("auth is disabled while the API listens on %s", cfg->address);
	log_info("API listening on %s", cfg->address);

	/* Host API on vsock: optional here, the process backend uses per-VM unix sockets. */
	vsock_api = (struct vmm_host_api){.rpc = &rpc};
	{
		_cleanup_free_ char *addr = xasprintf("%s:%u", cfg->host_api.address, cfg->host_api.port);
		struct err ve = ERR_INIT;
		struct http_listen_spec hs;

		host_srv = http_server_new(base, NULL, &ve);
		if (!host_srv || vmm_host_api_mount(host_srv, &vsock_api, &ve) < 0 ||
		    http_listen_parse(addr, &hs, &ve) < 0 ||
		    http_server_listen(host_srv, &hs, NULL, NULL, &ve) < 0)
			log_warn("host API on %s unavailable (%s); QEMU guests cannot reach it, process VMs "
				 "use unix sockets",
				 addr, err_str(&ve));
		else
			log_info("host API listening on %s", addr);
	}

	if (vmm_app_load_all(&app, NULL, &e) < 0)
		log_warn("loading VMs: %s", err_str(&e));
	err_clear(&e);
	if (vmm_proc_rebind(&proc, &app, &e) < 0)
		log_warn("process VMs: %s", err_str(&e));
	err_clear(&e);

	{
		json_t *info = json_pack(
		    "{s:i,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:I}", "pid", (int)getpid(), "address", cfg->address,
		    "working_dir", getcwd(cwd, sizeof(cwd)) ? cwd : "", "config_file", file ? file : "",
		    "image_path", cfg->image_path, "run_path", cfg->run_path, "node_name", cfg->node_name,
		    "version", VMM_VERSION, "started_at", (json_int_t)time(NULL));
		if (vmm_discovery_write(info, &disc, &e) < 0) {
			log_warn("discovery file: %s", err_str(&e));
			err_clear(&e);
		}
		json_decref(info);
	}
	sc = (struct serve_ctx){&app, &proc, NULL, (uint64_t)time(NULL)};
	sc.tick = event_new(base, -1, EV_PERSIST, on_tick, &sc);
	event_add(sc.tick, &one_s);
	if (http_server_handle_signals(srv, &e) < 0)
		goto out;
	signal(SIGPIPE, SIG_IGN);
	event_base_dispatch(base);
	log_info("shutting down");
	rc = 0;
out:
	if (rc)
		fprintf(stderr, "dstack-vmm: %s\n", err_str(&e));
	if (disc)
		unlink(disc);
	if (sc.tick)
		event_free(sc.tick);
	vmm_proc_backend_free(&proc);
	vmm_proc_config_free(&pcfg);
	if (host_srv)
		http_server_free(host_srv);
	if (srv)
		http_server_free(srv);
	vmm_registry_free(&registry);
	vmm_app_free(&app);
	if (base)
		event_base_free(base);
	return rc;
out_early:
	vmm_proc_config_free(&pcfg);
	fprintf(stderr, "dstack-vmm: %s\n", err_str(&e));
	return 1;
}

static int check_config(struct vmm_config *cfg, const char *file)
{
	struct err e = ERR_INIT;
	_cleanup_free_ char *mode = backend_mode(file, NULL, &e);
	struct http_listen_spec spec;

	if (mode && http_listen_parse(cfg->address, &spec, &e) < 0) {
		err_wrap(&e, "address");
		free(mode);
		mode = NULL;
	}
	if (!mode) {
		fprintf(stderr, "dstack-vmm: %s\n", err_str(&e));
		return 1;
	}
	printf("run_path = %s\nimage.path = %s\ncid range = %u..%u\nport_mapping = %s\nbackend = %s\n",
	       cfg->run_path, cfg->image_path, cfg->cvm.cid_start,
	       cfg->cvm.cid_start + cfg->cvm.cid_pool_size - 1,
	       cfg->cvm.port_mapping.enabled ? "enabled" : "disabled", mode);
	printf("Config OK\n");
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'}, {"help", no_argument, NULL, 'h'}, {0}};
	const char *file = NULL, *cmd;
	struct vmm_config cfg;
	struct err e = ERR_INIT;
	int c, rc;

	if (argc >= 4 && !strcmp(argv[1], "vm-launcher") && !strcmp(argv[2], "--spec")) {
		log_init("vm-launcher", LOG_LVL_INFO);
		return vmm_launcher_run(argv[3]);
	}
	if ((argc == 3 || argc == 4) && !strcmp(argv[1], "process-vm"))
		return vmm_process_vm_main(argv[2], !(argc == 4 && !strcmp(argv[3], "--shared-net")));
	while ((c = getopt_long(argc, argv, "+c:h", opts, NULL)) != -1) {
		if (c == 'c') {
			file = optarg;
		} else {
			usage();
			return c == 'h' ? 0 : 2;
		}
	}
	cmd = optind < argc ? argv[optind] : "serve";
	if (strcmp(cmd, "serve") && strcmp(cmd, "check-config") && strcmp(cmd, "run")) {
		usage();
		return 2;
	}
	log_init("vmm", LOG_LVL_INFO);
	if (vmm_config_load(&cfg, file, NULL, NULL, &e) < 0) {
		fprintf(stderr, "dstack-vmm: %s\n", err_str(&e));
		vmm_config_free(&cfg);
		return 1;
	}
	if (!strcmp(cmd, "check-config"))
		rc = check_config(&cfg, file);
	else if (!strcmp(cmd, "run"))
		rc = vmm_cmd_run(&cfg, argc - optind, argv + optind);
	else
		rc = serve(file, &cfg);
	vmm_config_free(&cfg);
	return rc;
}
