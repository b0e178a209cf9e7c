/*
 * vmm_guest_test.c — the VMM's way to a VM's guest agent, with real
 * processes: the supervisor, `dstack-vmm serve`, a process-backend VM, and
 * a real `dstack-guest-agent` (simulator) serving its GuestApi on the VM's
 * `<workdir>/guest-api.sock`. Checks the `/guest/<Method>` proxy (GET and
 * POST JSON, replies equal to the agent's own, unknown method / VM, no
 * agent yet, protobuf requests) and ShutdownVm: through the agent's
 * Shutdown while it answers (the agent exits, the VM is left to the guest),
 * and by stopping the VM when the agent is gone.
 *
 * usage: vmm_guest_test <dstack-vmm> <supervisor> <dstack-guest-agent> <testdata/dstack>
 */
#include "core/tap.h"
#include "prpc.pb-c.h"
#include "vmm/rpc/guest.h"
#include "vmm/workdir.h"
#include "vmm_rpc.pb-c.h"
#include "vmm_test_util.h"

static struct vt t;

/* Direct call to the agent's GuestApi on its unix socket. */
static json_t *agent_call(const char *sock, const char *m)
{
	_cleanup_free_ char *url = xasprintf("http://localhost/api/%s?json", m);
	const char *hdr[] = {"Content-Type: application/json", NULL};
	struct http_client_opts o = {.timeout_ms = 10000, .unix_socket = sock};
	struct http_response r = {0};
	json_t *j = NULL;

	if (http_fetch(&o, "POST", url, hdr, "{}", 2, &r, NULL) == 0 && r.status == 200)
		j = json_loadb((const char *)r.body.data, r.body.len, JSON_DECODE_ANY, NULL);
	http_response_free(&r);
	return j;
}

static const char *err_of(const json_t *j)
{
	return json_string_value(json_object_get(j, "error")) ?: "";
}

/* POST /guest/<m> with a protobuf vmm.Id body; status, *ctype, *msg (PrpcError.message). */
static long guest_protobuf(const char *m, const char *id, char **ctype, char **msg)
{
	_cleanup_free_ char *url = xasprintf("%s/guest/%s", t.api, m);
	Vmm__Id in = VMM__ID__INIT;
	uint8_t body[256];
	size_t n;
	struct http_response r = {0};
	struct http_client_opts o = {.timeout_ms = 20000};
	const char *hdr[] = {"Content-Type: application/octet-stream", NULL};
	long st;

	in.id = (char *)id;
	n = vmm__id__pack(&in, body);
	*msg = NULL;
	if (http_fetch(&o, "POST", url, hdr, body, n, &r, NULL) < 0)
		return -1;
	st = r.status;
	*ctype = http_response_header(&r, "Content-Type");
	if (st == 400) {
		Prpc__PrpcError *pe = prpc__prpc_error__unpack(NULL, r.body.len, r.body.data);

		if (pe) {
			*msg = xstrdup(pe->message);
			prpc__prpc_error__free_unpacked(pe, NULL);
		}
	}
	http_response_free(&r);
	return st;
}

int main(int argc, char **argv)
{
	char tmpl[] = "/tmp/vmm-guest-XXXXXX";
	_cleanup_free_ char *wd = NULL, *sock = NULL, *idb = NULL;
	json_t *r = NULL;
	char id[64] = "";
	pid_t agent = 0;

	if (argc < 5) {
		fprintf(stderr, "usage: %s dstack-vmm supervisor dstack-guest-agent testdata-dir\n", argv[0]);
		return 2;
	}
	unsigned port = vt_init(&t, argv[1], tmpl);

	vt_fake_image(&t, "dstack-0.5.3", "0.5.3");
	vt_write_config(&t, port, argv[2], "",
			"[cvm]\nbackend = \"process\"\ncid_start = 34000\ncid_pool_size = 2\n"
			"[cvm.auto_restart]\nenabled = false\n"
			/* The VM's own boot stops at once (setup = /bin/false), so it
			 * never starts an agent: the one on guest-api.sock is the
			 * test's, started and stopped when the test says. */
			"[cvm.process]\ndstack_util = \"/bin/false\"\n");
	ok(vt_start(&t), "dstack-vmm serve is up");
	{
		_cleanup_json_ json_t *c =
		    json_pack("{s:i,s:s,s:s,s:s}", "manifest_version", 2, "name", "guest", "runner", "bash",
			      "bash_script", "echo app up; exec sleep 600");
		_cleanup_free_ char *compose = json_dumps(c, JSON_COMPACT);
		_cleanup_json_ json_t *j =
		    json_pack("{s:s,s:s,s:s,s:i,s:i,s:i}", "name", "guest", "image", "dstack-0.5.3",
			      "compose_file", compose, "vcpu", 1, "memory", 256, "disk_size", 1);
		_cleanup_free_ char *body = json_dumps(j, JSON_COMPACT);

		ok(vt_call(&t, "CreateVm", body, &r) == 200, "CreateVm");
		snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(r, "id")) ?: "");
		json_decref(r);
	}
	ok(vt_wait_status(&t, id, "running", 20000), "VM running");
	wd = xasprintf("%s/run/%s", t.dir, id);
	sock = path_join(wd, "guest-api.sock");
	idb = xasprintf("{\"id\":\"%s\"}", id);

	/* no agent yet */
	{
		_cleanup_free_ char *p = xasprintf("/guest/Info?id=%s", id), *body = NULL;
		_cleanup_json_ json_t *j = NULL;

		is_int(vt_get(&t, p, &body, NULL), 400, "/guest/Info without a reachable agent: 400");
		j = json_loads(body ? body : "", 0, NULL);
		ok(strstr(err_of(j), "guest agent"), "error names the guest agent (%s)", err_of(j));
	}

	/* the agent: simulator, GuestApi on the VM's guest-api.sock */
	{
		_cleanup_free_ char *sim = path_join(t.dir, "sim"), *gapi = xasprintf("unix:%s", sock);
		_cleanup_free_ char *log = path_join(t.dir, "agent.log");

		static const char *const files[] = {"appkeys.json", "app-compose.json", "sys-config.json",
						    "attestation.bin"};

		mkdir_p(sim, 0755, NULL);
		for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
			_cleanup_free_ char *from = xasprintf("%s/simulator-%s", argv[4], files[i]);
			_cleanup_free_ char *to = path_join(sim, files[i]);
			_cleanup_free_ uint8_t *d = NULL;
			size_t len = 0;

			if (file_read_all(from, 1 << 20, &d, &len, NULL) < 0 ||
			    file_write_atomic(to, d, len, 0600, NULL) < 0)
				diag("cannot copy %s", from);
		}
		agent = fork();
		if (agent == 0) {
			FILE *f = freopen(log, "a", stderr);

			(void)f;
			execl(argv[3], argv[3], "--simulator", sim, "--guest-api", gapi, "--external", "none",
			      (char *)NULL);
			_exit(127);
		}
		for (int w = 0; w < 100 && !file_exists(sock); w++)
			vt_sleep_ms(100);
		ok(file_exists(sock), "guest agent serves %s", sock);
	}

	/* proxy: replies are the agent's own */
	{
		_cleanup_json_ json_t *direct = agent_call(sock, "Info"), *via = NULL, *via2 = NULL;
		_cleanup_free_ char *p = xasprintf("/guest/Info?id=%s", id), *body = NULL, *ct = NULL;

		ok(json_string_value(json_object_get(direct, "app_id")), "agent Info has app_id");
		is_int(vt_get(&t, p, &body, &ct), 200, "GET /guest/Info?id=…: 200");
		ok(ct && !strncmp(ct, "application/json", 16), "JSON reply");
		via = json_loads(body ? body : "", 0, NULL);
		ok(json_equal(via, direct), "GET /guest/Info equals the agent's Info");
		is_int(vt_post(&t, "/guest/Info?json", idb, &via2, 0), 200, "POST /guest/Info?json: 200");
		ok(json_equal(via2, direct), "POST /guest/Info equals the agent's Info");
	}
	{
		_cleanup_json_ json_t *j = NULL;

		is_int(vt_post(&t, "/guest/SysInfo", idb, &j, 0), 200,
		       "POST /guest/SysInfo (JSON Content-Type)");
		ok(json_integer_value(json_object_get(j, "num_cpus")) > 0 &&
		       json_string_value(json_object_get(j, "kernel_version")),
		   "SysInfo has num_cpus and kernel_version");
	}
	{
		_cleanup_json_ json_t *j = NULL;

		is_int(vt_post(&t, "/guest/NetworkInfo?json", idb, &j, 0), 200, "NetworkInfo");
		ok(json_is_array(json_object_get(j, "interfaces")), "NetworkInfo has interfaces");
	}
	{
		_cleanup_json_ json_t *j = NULL;

		is_int(vt_post(&t, "/guest/ListContainers?json", idb, &j, 0), 200, "ListContainers");
		ok(json_is_array(json_object_get(j, "containers")), "ListContainers has containers");
	}
	{
		_cleanup_json_ json_t *j = NULL, *k = NULL, *l = NULL;

		is_int(vt_post(&t, "/guest/Reboot?json", idb, &j, 0), 400, "unknown method: 400");
		is_str(err_of(j), "Service not found: Reboot", "unknown method error");
		is_int(vt_post(&t, "/guest/Info?json", "{\"id\":\"no-such-vm\"}", &k, 0), 400,
		       "unknown VM: 400");
		is_str(err_of(k), "VM not found: no-such-vm", "unknown VM error");
		is_int(vt_post(&t, "/guest/Info?json", "[1,2]", &l, 0), 400, "body not an object: 400");
	}
	{
		_cleanup_free_ char *ct = NULL, *msg = NULL;

		is_int(guest_protobuf("Info", id, &ct, &msg), 400, "protobuf /guest/Info: 400");
		ok(ct && !strcmp(ct, "application/octet-stream") && msg && strstr(msg, "JSON only"),
		   "protobuf error is a PrpcError saying JSON only (%s)", msg ? msg : "(none)");
	}

	/* ShutdownVm through the agent: the agent exits, the VM is the guest's business */
	{
		int st = -1;
		pid_t got = 0;

		is_int(vt_call(&t, "ShutdownVm", idb, NULL), 200, "ShutdownVm while the agent answers");
		for (int w = 0; w < 100 && got == 0; w++) {
			got = waitpid(agent, &st, WNOHANG);
			if (!got)
				vt_sleep_ms(100);
		}
		ok(got == agent && WIFEXITED(st) && WEXITSTATUS(st) == 0,
		   "the agent got Shutdown and exited");
		agent = 0;
		_cleanup_json_ json_t *i = vt_info(&t, id);
		is_str(json_string_value(json_object_get(i, "status")), "running",
		       "the VM itself was not stopped by the VMM (the guest powers off)");
	}
	/* agent gone: ShutdownVm stops the VM instead */
	{
		_cleanup_free_ char *ct = NULL, *msg = NULL;

		is_int(guest_protobuf("Shutdown", id, &ct, &msg), 400,
		       "protobuf /guest/Shutdown with the agent gone: 400");
		ok(msg && strstr(msg, "guest agent"), "PrpcError names the guest agent (%s)",
		   msg ? msg : "(none)");
		is_int(vt_call(&t, "ShutdownVm", idb, NULL), 200, "ShutdownVm with the agent gone");
		ok(vt_wait_status(&t, id, "stopped", 10000), "VM stopped by the fallback");
	}
	{
		_cleanup_json_ json_t *j = NULL;

		is_int(vt_call(&t, "ShutdownVm", "{\"id\":\"no-such-vm\"}", &j), 400,
		       "ShutdownVm of an unknown VM: 400");
	}
	/* the vsock client: no VM has this CID, so the connect fails (bounded by the timeout) */
	{
		struct vmm_guest_target vt = {.cid = 0x7ffffff0, .port = VMM_GUEST_API_PORT};
		struct err e = ERR_INIT;
		time_t t0 = time(NULL);
		int rc = vmm_guest_call(&vt, "Info", 3000, NULL, &e);

		ok(rc < 0 && strstr(e.msg, "guest agent at vsock:2147483632:8000"),
		   "vsock call to a CID without a VM fails naming the address (%s)", e.msg);
		ok(time(NULL) - t0 <= 10, "within the timeout");
	}
	vt_call(&t, "RemoveVm", idb, NULL);
	for (int w = 0; w < 100 && file_exists(wd); w++)
		vt_sleep_ms(100);
	ok(!file_exists(wd), "VM removed");
	if (agent > 0) {
		kill(agent, SIGTERM);
		waitpid(agent, NULL, 0);
	}
	vt_finish(&t);
	free(t.dir);
	free(t.api);
	return tap_done();
}
