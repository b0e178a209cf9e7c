/*
 * cmd_dev.c — `dstack dev up | down | status [--dir DIR]`: one command from
 * a checkout to a running local dev stack (the operators' guide's dev
 * deployment), and back.
 *
 * `up` generates the host configuration (dstack hostcfg) in the state
 * directory, starts the simulated-TDX collateral service, auth-simple (with
 * KMS_AUTH=webhook), the KMS and the gateway (each behind the guest agent of
 * a simulated CVM of its own, which attests it), and the VMM as background
 * processes — each in its own session, with its log and a pid file in the
 * state directory — waits for each to answer its health check, then deploys
 * examples/hello with an env var encrypted to the KMS's app env key and
 * prints the curl commands that reach it through the gateway. `down` removes
 * the app VMs, stops every process it started and removes the gateway's
 * WireGuard link; the state directory (keys, configs, logs) stays and is
 * reused by the next `up`. The parts live in dev_*.c (see dev.h).
 */
#include <curl/curl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"
#include "core/cleanup.h"
#include "core/fileio.h"
#include "core/mem.h"
#include "dev.h"

int dev_make_dirs(const struct dev *d, struct err *e)
{
	_cleanup_free_ char *logs = dev_pathf("%s/logs", d->dir), *run = dev_pathf("%s/run", d->dir);
	return mkdir_p(logs, 0755, e) < 0 || mkdir_p(run, 0755, e) < 0 ? -1 : 0;
}

int dev_load_config(struct dev *d, bool generate, struct err *e)
{
	_cleanup_free_ char *script = dev_pathf("%s/build-config.sh", d->dir);
	if (generate) {
		char *argv[] = {"hostcfg", "--dir", d->dir, NULL};
		if (!file_exists(script)) {
			if (cmd_hostcfg(3, argv) != 0)
				return err_set(e, "dstack hostcfg failed");
			printf("dstack dev up: using these defaults now; after editing build-config.sh, "
			       "`dstack dev "
			       "down` and `dstack dev up` apply the change.\n");
		}
		if (cmd_hostcfg(3, argv) != 0)
			return err_set(e, "dstack hostcfg failed");
	}
	uint8_t *text = NULL;
	size_t n;
	if (file_read_all(script, 256 * 1024, &text, &n, e) < 0)
		return err_wrap(e, "no dev stack here (run `dstack dev up`)");
	int rc = hostcfg_parse((char *)text, n, d->dir, &d->c, e);
	secure_zero(text, n);
	free(text);
	return rc;
}

static int dev_down(struct dev *d)
{
	struct err e = ERR_INIT;
	if (dev_load_config(d, false, &e) < 0) {
		fprintf(stderr, "dstack dev down: %s\n", err_str(&e));
		return 1;
	}
	printf("dstack dev down: %s\n", d->dir);
	dev_remove_vms(d);
	for (size_t i = dev_n_comps; i-- > 0;) {
		pid_t pid = dev_read_pid(d, dev_comps[i].name);
		_cleanup_free_ char *pp = dev_pid_path(d, dev_comps[i].name);
		if (pid > 0)
			dev_stop_pid(dev_comps[i].name, pid, d->grace_s);
		unlink(pp);
	}
	dev_sweep(d);
	dev_remove_link(d);
	_cleanup_free_ char *aid = dev_state_file(d, "app-id");
	unlink(aid);
	printf("stopped; state (keys, configs, logs) kept in %s\n", d->dir);
	return 0;
}

static int dev_status(struct dev *d)
{
	struct err e = ERR_INIT;
	if (dev_load_config(d, false, &e) < 0) {
		fprintf(stderr, "dstack dev status: %s\n", err_str(&e));
		return 1;
	}
	int down = 0;
	printf("dev stack in %s (KMS_AUTH=%s, VMM_BACKEND=%s)\n", d->dir, d->c.kms_auth, d->c.vmm_backend);
	for (size_t i = 0; i < dev_n_comps; i++) {
		const struct comp *k = &dev_comps[i];
		pid_t pid = dev_read_pid(d, k->name);
		_cleanup_free_ char *url = dev_health_url(d, k);
		_cleanup_free_ char *lp = dev_log_path(d, k->name);
		const char *state = pid <= 0            ? (dev_skipped(d, k->name) ? "not used" : "stopped")
				    : dev_healthy(d, k) ? "healthy"
							: "running, not healthy";
		if (pid <= 0 && !dev_skipped(d, k->name))
			down++;
		printf("  %-12s %-22s pid %-7d %s  log %s\n", k->name, state, pid > 0 ? (int)pid : 0, url,
		       lp);
	}
	_cleanup_free_ char *aid_path = dev_state_file(d, "app-id");
	uint8_t *aid = NULL;
	size_t n;
	if (file_read_all(aid_path, 128, &aid, &n, NULL) == 0) {
		aid[strcspn((char *)aid, "\r\n")] = '\0';
		dev_print_urls(d, (char *)aid);
		free(aid);
	} else {
		printf("\nno app deployed\n");
	}
	return down ? 3 : 0;
}

static char *default_example(const struct dev *d, const char *file)
{
	if (!d->src_dir)
		return NULL;
	char *p = dev_pathf("%s/examples/hello/%s", d->src_dir, file);
	if (file_exists(p))
		return p;
	free(p);
	return NULL;
}

static int dev_up(struct dev *d)
{
	struct err e = ERR_INIT;
	_cleanup_free_ char *old = dev_state_file(d, "app-vms");
	_cleanup_json_ json_t *platform = NULL; /* the KMS's BootInfo (webhook) */
	bool webhook = false;
	char app_id[41];
	/* before anything is generated or started */
	if ((!strstr(d->without, ",gateway,") || !strstr(d->without, ",vmm,")) &&
	    dev_check_privileges(&e) < 0) {
		fprintf(stderr, "%s\n", err_str(&e));
		return 1;
	}
	if (dev_make_dirs(d, &e) < 0 || (d->backend && dev_set_backend(d, d->backend, &e) < 0) ||
	    dev_load_config(d, true, &e) < 0 ||
	    (d->image_arg && dev_resolve_image(d, d->image_arg, &e) < 0) ||
	    dev_check_backend(d, !dev_skipped(d, "vmm") && !dev_skipped(d, "app") && !file_exists(old), &e) <
		0) {
		fprintf(stderr, "dstack dev up: %s\n", err_str(&e));
		return 1;
	}
	printf("\ndstack dev up: %s\n", d->dir);
	webhook = !strcmp(d->c.kms_auth, "webhook");
	if (!dev_skipped(d, "simtee") && dev_ensure_simtee(d, &e) < 0)
		goto fail;
	if (!dev_skipped(d, "kms-agent") && dev_ensure_kms_cvm(d, &e) < 0)
		goto fail;
	for (size_t i = 0; i < dev_n_comps; i++) {
		const char *name = dev_comps[i].name;
		if (dev_skipped(d, name)) {
			printf("  %-12s skipped\n", name);
			continue;
		}
		if (!strcmp(name, "gateway-agent") && !(dev_read_pid(d, name) > 0) &&
		    dev_boot_gateway_cvm(d, platform, &e) < 0)
			goto fail;
		if (dev_start_comp(d, &dev_comps[i], &e) < 0)
			goto fail;
		if (!strcmp(name, "gateway") && dev_check_wg_link(d, &e) < 0)
			goto fail;
		/* KMS_AUTH=webhook: the KMS authorizes itself through auth-simple
		 * as soon as it starts, so its identity goes in first */
		if (!strcmp(name, "kms-agent") && webhook &&
		    (dev_kms_boot_info(d, &platform, &e) < 0 ||
		     dev_policy_allow(d, "the KMS", true, platform, &e) < 0))
			goto fail;
	}
	if (dev_skipped(d, "vmm") || dev_skipped(d, "app")) {
		printf("\nno app deployed (--without vmm/app). Stop with: dstack dev down --dir %s\n",
		       d->dir);
		return 0;
	}
	if (!d->compose_path || !d->env_path) {
		err_set(&e, "examples/hello not found (pass --compose FILE --env-file FILE)");
		goto fail;
	}
	if (file_exists(old)) {
		_cleanup_free_ char *p = dev_state_file(d, "app-id");
		uint8_t *t = NULL;
		size_t n;
		if (file_read_all(p, 128, &t, &n, &e) < 0)
			goto fail;
		snprintf(app_id, sizeof app_id, "%.40s", (char *)t);
		free(t);
		printf("  app          already deployed\n");
		if (platform && dev_allow_app(d, platform, &e) < 0)
			goto fail;
	} else if (dev_ensure_dev_image(d, &e) < 0 || (platform && dev_allow_app(d, platform, &e) < 0) ||
		   dev_deploy_app(d, app_id, &e) < 0) {
		goto fail;
	}
	if (dev_wait_app(d, app_id, &e) < 0)
		goto fail;
	dev_print_urls(d, app_id);
	printf("\nStatus: dstack dev status --dir %s    Stop: dstack dev down --dir %s\n", d->dir, d->dir);
	return 0;
fail:
	fprintf(stderr, "dstack dev up: %s\n", err_str(&e));
	fprintf(stderr,
		"The components started so far keep running for inspection; "
		"`dstack dev down --dir %s` stops them.\n",
		d->dir);
	return 1;
}

static void usage(FILE *f)
{
	fprintf(f, "Usage: dstack dev up|down|status|cvm kms|cvm gateway|allow [options]\n"
		   "\n"
		   "Run a local dev stack: simulated-TDX collateral service, KMS (dev auth, or\n"
		   "auth-simple with KMS_AUTH=webhook), gateway (WireGuard via wireguard-go when the\n"
		   "kernel has none), VMM with simulated CVMs (or QEMU VMs), and the example app,\n"
		   "reachable through the gateway. Needs root (the WireGuard interface, the CVMs'\n"
		   "network namespaces).\n"
		   "\n"
		   "  up       generate the host config (dstack hostcfg) if needed, start every\n"
		   "           component, deploy the app, print the curl commands that reach it\n"
		   "  down     remove the app VMs, stop what `up` started, remove the WireGuard link\n"
		   "  status   show each component and the app URLs (exit 3 if something is down)\n"
		   "\n"
		   "For starting the components by hand (docs/dev-stack.md):\n"
		   "  cvm kms      boot the KMS's simulated CVM and start its guest agent\n"
		   "  cvm gateway  the same for the gateway (the KMS must be up)\n"
		   "  allow        KMS_AUTH=webhook: allow the app (--compose, --image) in\n"
		   "               auth-config.json (cvm kms also allows the KMS, cvm gateway\n"
		   "               the gateway)\n"
		   "\n"
		   "  --dir DIR          state directory (default ./.dev)\n"
		   "  --without NAME     do not start NAME: simtee, auth-simple, kms-agent, kms,\n"
		   "                     gateway-agent, gateway, vmm, app\n"
		   "                     (repeatable; without vmm no app is deployed)\n"
		   "  --compose FILE     app compose (default examples/hello/app-compose.json)\n"
		   "  --env-file FILE    KEY=VALUE env encrypted for the app (default examples/hello/env)\n"
		   "  --backend B        process (simulated CVMs, the default) or qemu (real VMs\n"
		   "                     booting --image); recorded as VMM_BACKEND in build-config.sh\n"
		   "  --image NAME|DIR   the app's guest image: a name in the VMM's image directory,\n"
		   "                     or a dstack guest image directory (metadata.json, kernel,\n"
		   "                     initrd, rootfs) linked into it; default: the placeholder\n"
		   "                     dstack-dev of the process backend\n"
		   "  --instances N      app instances (default 1; 2+ shows load balancing)\n"
		   "  --timeout S        per-component health timeout (default 30)\n"
		   "  --app-timeout S    time for the app to answer through the gateway (default 120)\n"
		   "  --grace S          SIGTERM grace before SIGKILL on down (default 5)\n");
}

/* The source tree: the build dir's parent holds examples/ (meson builds in
 * <src>/build/), or the current directory. */
static char *find_src_dir(const char *self_dir)
{
	char p[PATH_MAX];
	snprintf(p, sizeof p, "%s/../../examples/hello/app-compose.json", self_dir);
	if (file_exists(p)) {
		snprintf(p, sizeof p, "%s/../..", self_dir);
		return realpath(p, NULL);
	}
	if (file_exists("examples/hello/app-compose.json"))
		return realpath(".", NULL);
	return NULL;
}

int cmd_dev(int argc, char **argv)
{
	static const struct option opts[] = {{"dir", required_argument, NULL, 'd'},
					     {"without", required_argument, NULL, 'w'},
					     {"compose", required_argument, NULL, 'c'},
					     {"env-file", required_argument, NULL, 'e'},
					     {"image", required_argument, NULL, 'i'},
					     {"backend", required_argument, NULL, 'b'},
					     {"instances", required_argument, NULL, 'n'},
					     {"timeout", required_argument, NULL, 't'},
					     {"app-timeout", required_argument, NULL, 'a'},
					     {"grace", required_argument, NULL, 'g'},
					     {"help", no_argument, NULL, 'h'},
					     {NULL, 0, NULL, 0}};
	struct dev d = {
	    .timeout_s = 30, .app_timeout_s = 120, .grace_s = 5, .instances = 1, .image = "dstack-dev"};
	const char *dir_arg = ".dev";
	_cleanup_free_ char *compose = NULL, *env = NULL;
	int ch;
	strcpy(d.without, ",");
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	/* line-buffered: progress and errors (stderr) stay in order in a log */
	setvbuf(stdout, NULL, _IOLBF, 0);
	const char *verb = argv[1];
	optind = 2;
	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		int v = optarg ? atoi(optarg) : 0;
		switch (ch) {
		case 'd':
			dir_arg = optarg;
			break;
		case 'w':
			if (strlen(d.without) + strlen(optarg) + 2 >= sizeof d.without)
				return 2;
			strcat(d.without, optarg);
			strcat(d.without, ",");
			break;
		case 'c':
			d.compose_path = optarg;
			break;
		case 'e':
			d.env_path = optarg;
			break;
		case 'i':
			d.image_arg = optarg;
			break;
		case 'b':
			d.backend = optarg;
			break;
		case 'n':
		case 't':
		case 'a':
		case 'g':
			if (v <= 0 || v > 3600) {
				fprintf(stderr, "dstack dev: --%s wants a number 1-3600\n",
					ch == 'n'   ? "instances"
					: ch == 't' ? "timeout"
					: ch == 'a' ? "app-timeout"
						    : "grace");
				return 2;
			}
			*(ch == 'n'   ? &d.instances
			  : ch == 't' ? &d.timeout_s
			  : ch == 'a' ? &d.app_timeout_s
				      : &d.grace_s) = v;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	/* `cvm` takes which CVM; the other verbs no argument */
	if (optind != argc - !strcmp(verb, "cvm")) {
		usage(stderr);
		return 2;
	}
	struct err e = ERR_INIT;
	if (!strcmp(verb, "up") && mkdir_p(dir_arg, 0755, &e) < 0) {
		fprintf(stderr, "dstack dev: %s\n", err_str(&e));
		return 1;
	}
	_cleanup_free_ char *self_dir = hostcfg_self_dir(&e);
	char self[PATH_MAX];
	ssize_t sl = readlink("/proc/self/exe", self, sizeof self - 1);
	if (!self_dir || sl <= 0) {
		fprintf(stderr, "dstack dev: %s\n", err_str(&e));
		return 1;
	}
	self[sl] = '\0';
	d.dstack = self;
	d.dir = realpath(dir_arg, NULL);
	if (!d.dir) {
		fprintf(stderr, "dstack dev %s: no dev stack in %s (run `dstack dev up`)\n", verb, dir_arg);
		return 1;
	}
	d.src_dir = find_src_dir(self_dir);
	if (!d.compose_path && (compose = default_example(&d, "app-compose.json")))
		d.compose_path = compose;
	if (!d.env_path && (env = default_example(&d, "env")))
		d.env_path = env;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	int rc;
	if (!strcmp(verb, "up"))
		rc = dev_up(&d);
	else if (!strcmp(verb, "down"))
		rc = dev_down(&d);
	else if (!strcmp(verb, "status"))
		rc = dev_status(&d);
	else if (!strcmp(verb, "cvm"))
		rc = dev_cvm(&d, argv[optind]);
	else if (!strcmp(verb, "allow"))
		rc = dev_allow(&d);
	else {
		usage(stderr);
		rc = 2;
	}
	hostcfg_free(&d.c);
	free(d.dir);
	free(d.src_dir);
	curl_global_cleanup();
	return rc;
}
