/*
 * sv.c — see sv.h.
 */
#include "vmm/supervisor/sv.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/fileio.h"

extern char **environ;

void sv_config_free(struct sv_config *c)
{
	free(c->id);
	free(c->name);
	free(c->command);
	strv_free(&c->args);
	strv_free(&c->env);
	free(c->cwd);
	free(c->stdout_path);
	free(c->stderr_path);
	free(c->pidfile);
	free(c->note);
	memset(c, 0, sizeof(*c));
}

static int opt_str(const json_t *j, const char *k, char **dst, struct err *e)
{
	json_t *v = json_object_get(j, k);

	if (!v || json_is_null(v)) {
		*dst = xstrdup("");
		return 0;
	}
	if (!json_is_string(v))
		return err_set(e, "%s: expected a string", k);
	*dst = xstrdup(json_string_value(v));
	return 0;
}

int sv_config_from_json(const json_t *j, struct sv_config *c, struct err *e)
{
	json_t *v;
	const char *k;

	memset(c, 0, sizeof(*c));
	if (!json_is_object(j))
		return err_set(e, "ProcessConfig: expected an object");
	if (opt_str(j, "id", &c->id, e) < 0 || opt_str(j, "name", &c->name, e) < 0 ||
	    opt_str(j, "command", &c->command, e) < 0 || opt_str(j, "cwd", &c->cwd, e) < 0 ||
	    opt_str(j, "stdout", &c->stdout_path, e) < 0 || opt_str(j, "stderr", &c->stderr_path, e) < 0 ||
	    opt_str(j, "pidfile", &c->pidfile, e) < 0 || opt_str(j, "note", &c->note, e) < 0)
		goto fail;
	if ((v = json_object_get(j, "args")) && !json_is_null(v) &&
	    strv_from_json(&c->args, v, "args", e) < 0)
		goto fail;
	v = json_object_get(j, "env");
	if (v && !json_is_null(v)) {
		json_t *val;

		if (!json_is_object(v)) {
			err_set(e, "env: expected an object");
			goto fail;
		}
		json_object_foreach(v, k, val)
		{
			if (!json_is_string(val) || strchr(k, '=')) {
				err_set(e, "env: invalid entry %s", k);
				goto fail;
			}
			strv_pushf(&c->env, "%s=%s", k, json_string_value(val));
		}
	}
	v = json_object_get(j, "cid");
	if (v && !json_is_null(v)) {
		if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > UINT32_MAX) {
			err_set(e, "cid: expected a u32");
			goto fail;
		}
		c->has_cid = true;
		c->cid = (uint32_t)json_integer_value(v);
	}
	return 0;
fail:
	sv_config_free(c);
	return err_wrap(e, "Invalid process config");
}

json_t *sv_config_to_json(const struct sv_config *c)
{
	json_t *env = json_object();

	for (size_t i = 0; i < c->env.n; i++) {
		const char *eq = strchr(c->env.v[i], '=');
		_cleanup_free_ char *k = strndup(c->env.v[i], (size_t)(eq - c->env.v[i]));

		json_object_set_new(env, k, json_string(eq + 1));
	}
	return json_pack("{s:s,s:s,s:s,s:o,s:o,s:s,s:s,s:s,s:s,s:o,s:s}", "id", c->id, "name", c->name,
			 "command", c->command, "args", strv_to_json(&c->args), "env", env, "cwd", c->cwd,
			 "stdout", c->stdout_path, "stderr", c->stderr_path, "pidfile", c->pidfile, "cid",
			 c->has_cid ? json_integer(c->cid) : json_null(), "note", c->note);
}

void sv_init(struct sv *s)
{
	memset(s, 0, sizeof(*s));
}

static void proc_free(struct sv_process *p)
{
	sv_config_free(&p->cfg);
	free(p->error);
	free(p);
}

void sv_free(struct sv *s)
{
	for (size_t i = 0; i < s->n; i++)
		proc_free(s->procs[i]);
	free(s->procs);
	memset(s, 0, sizeof(*s));
}

struct sv_process *sv_find(struct sv *s, const char *id)
{
	for (size_t i = 0; i < s->n; i++)
		if (!strcmp(s->procs[i]->cfg.id, id))
			return s->procs[i];
	return NULL;
}

static int open_log(const char *path)
{
	if (str_empty(path))
		return open("/dev/null", O_WRONLY | O_CLOEXEC);
	return open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
}

/* Runs in the child after fork: only async-signal-safe calls. */
static void __attribute__((noreturn))
exec_child(const struct sv_config *c, char **argv, char **envp, int out, int err, int report)
{
	int saved;

	setpgid(0, 0);
	if (dup2(out, 1) < 0 || dup2(err, 2) < 0)
		goto fail;
	int devnull = open("/dev/null", O_RDONLY);
	if (devnull >= 0) {
		dup2(devnull, 0);
		if (devnull > 2)
			close(devnull);
	}
	if (!str_empty(c->cwd) && chdir(c->cwd) < 0)
		goto fail;
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	execvpe(argv[0], argv, envp);
fail:
	saved = errno;
	if (write(report, &saved, sizeof(saved)) < 0) {
	}
	_exit(127);
}

static void set_error(struct sv_process *p, const char *msg)
{
	str_set(&p->error, msg);
	p->status = SV_ERROR;
	p->pid = 0;
}

static int spawn(struct sv_process *p, struct err *e)
{
	const struct sv_config *c = &p->cfg;
	struct strv argv = {0}, envp = {0};
	_cleanup_close_ int out = -1, errfd = -1;
	int pipefd[2], child_errno = 0;
	ssize_t n;
	pid_t pid;

	if (str_empty(c->command)) {
		set_error(p, "command is empty");
		return err_set(e, "command is empty");
	}
	out = open_log(c->stdout_path);
	errfd = open_log(c->stderr_path);
	if (out < 0 || errfd < 0) {
		err_errno(e, "open log file");
		set_error(p, e ? e->msg : "open log file");
		return -1;
	}
	strv_push(&argv, c->command);
	for (size_t i = 0; i < c->args.n; i++)
		strv_push(&argv, c->args.v[i]);
	for (char **ep = environ; *ep; ep++)
		strv_push(&envp, *ep);
	for (size_t i = 0; i < c->env.n; i++)
		strv_push(&envp, c->env.v[i]);
	if (pipe2(pipefd, O_CLOEXEC) < 0) {
		strv_free(&argv);
		strv_free(&envp);
		return err_errno(e, "pipe");
	}
	pid = fork();
	if (pid == 0)
		exec_child(c, argv.v, envp.v, out, errfd, pipefd[1]);
	close(pipefd[1]);
	strv_free(&argv);
	strv_free(&envp);
	if (pid < 0) {
		close(pipefd[0]);
		err_errno(e, "fork");
		set_error(p, e ? e->msg : "fork failed");
		return -1;
	}
	/* The pipe closes on exec (success) or carries errno (failure). */
	do
		n = read(pipefd[0], &child_errno, sizeof(child_errno));
	while (n < 0 && errno == EINTR);
	close(pipefd[0]);
	if (n == sizeof(child_errno)) {
		waitpid(pid, NULL, 0);
		errno = child_errno;
		err_errno(e, "spawn %s", c->command);
		set_error(p, e ? e->msg : "spawn failed");
		return -1;
	}
	setpgid(pid, pid); /* also done by the child; whichever runs first wins */
	p->pid = pid;
	p->status = SV_RUNNING;
	p->started_at = time(NULL);
	p->stopped_at = 0;
	free(p->error);
	p->error = NULL;
	if (!str_empty(c->pidfile)) {
		char buf[32];
		int len = snprintf(buf, sizeof(buf), "%d\n", (int)pid);

		file_write_atomic(c->pidfile, buf, (size_t)len, 0644, NULL);
	}
	return 0;
}

int sv_deploy(struct sv *s, const json_t *config, struct err *e)
{
	struct sv_config c;
	struct sv_process *p;

	if (s->frozen)
		return err_set(e, "Supervisor is freezed");
	if (sv_config_from_json(config, &c, e) < 0)
		return -1;
	if (str_empty(c.id)) {
		sv_config_free(&c);
		return err_set(e, "Process ID is empty");
	}
	p = sv_find(s, c.id);
	if (p && p->status == SV_RUNNING) {
		sv_config_free(&c);
		return err_set(e, "Process is already running");
	}
	if (!p) {
		p = calloc(1, sizeof(*p));
		s->procs = realloc(s->procs, (s->n + 1) * sizeof(*s->procs));
		if (!p || !s->procs)
			abort();
		s->procs[s->n++] = p;
	} else {
		sv_config_free(&p->cfg);
		free(p->error);
		p->error = NULL;
	}
	p->cfg = c;
	p->status = SV_STOPPED;
	p->started = true;
	return spawn(p, e);
}

int sv_start(struct sv *s, const char *id, struct err *e)
{
	struct sv_process *p = sv_find(s, id);

	if (s->frozen)
		return err_set(e, "Supervisor is freezed");
	if (!p)
		return err_set(e, "Process not found");
	if (p->status == SV_RUNNING)
		return err_set(e, "Process is already running");
	p->started = true;
	return spawn(p, e);
}

static void mark_exit(struct sv_process *p, int status)
{
	p->pid = 0;
	p->stopped_at = time(NULL);
	/* An exit we asked for is "stopped"; any other is "exited(<status>)". */
	if (!p->started) {
		p->status = SV_STOPPED;
	} else {
		p->status = SV_EXITED;
		p->wait_status = status;
	}
}

int sv_reap(struct sv *s)
{
	int changed = 0;

	for (size_t i = 0; i < s->n; i++) {
		struct sv_process *p = s->procs[i];
		int status;
		pid_t r;

		if (p->status != SV_RUNNING || p->pid <= 0)
			continue;
		do
			r = waitpid(p->pid, &status, WNOHANG);
		while (r < 0 && errno == EINTR);
		if (r == p->pid || (r < 0 && errno == ECHILD)) {
			mark_exit(p, r == p->pid ? status : 0);
			changed++;
		}
	}
	return changed;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Wait up to ms for p to exit; true when it did. */
static bool wait_exit(struct sv_process *p, unsigned ms)
{
	for (unsigned waited = 0;; waited += 10) {
		int status;
		pid_t r = waitpid(p->pid, &status, WNOHANG);

		if (r == p->pid || (r < 0 && errno == ECHILD)) {
			mark_exit(p, r == p->pid ? status : 0);
			return true;
		}
		if (waited >= ms)
			return false;
		sleep_ms(10);
	}
}

int sv_stop(struct sv *s, const char *id, unsigned grace_ms, struct err *e)
{
	struct sv_process *p = sv_find(s, id);

	if (!p)
		return err_set(e, "Process not found");
	p->started = false;
	if (p->status != SV_RUNNING) {
		if (p->status == SV_EXITED && WIFEXITED(p->wait_status) && WEXITSTATUS(p->wait_status) == 0)
			p->status = SV_STOPPED;
		return 0;
	}
	if (grace_ms) {
		kill(-p->pid, SIGTERM);
		kill(p->pid, SIGTERM);
		if (wait_exit(p, grace_ms))
			return 0;
	}
	kill(-p->pid, SIGKILL);
	kill(p->pid, SIGKILL);
	if (!wait_exit(p, 5000))
		return err_set(e, "Process %s did not exit after SIGKILL", id);
	return 0;
}

int sv_remove(struct sv *s, const char *id, struct err *e)
{
	struct sv_process *p = sv_find(s, id);

	if (!p)
		return err_set(e, "Process not found");
	if (p->started)
		return err_set(e, "Process is started");
	if (p->status == SV_RUNNING)
		return err_set(e, "Process is running");
	for (size_t i = 0; i < s->n; i++) {
		if (s->procs[i] == p) {
			memmove(s->procs + i, s->procs + i + 1, (s->n - i - 1) * sizeof(*s->procs));
			s->n--;
			break;
		}
	}
	proc_free(p);
	return 0;
}

void sv_clear(struct sv *s)
{
	size_t j = 0;

	for (size_t i = 0; i < s->n; i++) {
		struct sv_process *p = s->procs[i];

		if (!p->started && p->status != SV_RUNNING)
			proc_free(p);
		else
			s->procs[j++] = p;
	}
	s->n = j;
}

void sv_shutdown(struct sv *s)
{
	s->frozen = true;
	for (size_t i = 0; i < s->n; i++) {
		struct sv_process *p = s->procs[i];

		p->started = false;
		if (p->status == SV_RUNNING) {
			kill(-p->pid, SIGKILL);
			kill(p->pid, SIGKILL);
		}
	}
	for (unsigned round = 0; round < 10; round++) {
		bool any = false;

		sv_reap(s);
		for (size_t i = 0; i < s->n; i++)
			any |= s->procs[i]->status == SV_RUNNING;
		if (!any)
			return;
		sleep_ms(50 + 200 * round);
	}
}

static json_t *status_json(const struct sv_process *p)
{
	switch (p->status) {
	case SV_RUNNING:
		return json_string("running");
	case SV_EXITED:
		return json_pack("{s:i}", "exited", p->wait_status);
	case SV_ERROR:
		return json_pack("{s:s}", "error", p->error ? p->error : "");
	case SV_STOPPED:
	default:
		return json_string("stopped");
	}
}

char *sv_status_text(const struct sv_process *p)
{
	switch (p->status) {
	case SV_RUNNING:
		return xstrdup("running");
	case SV_EXITED:
		return xasprintf("exited(%d)", p->wait_status);
	case SV_ERROR:
		return xasprintf("error(%s)", p->error ? p->error : "");
	case SV_STOPPED:
	default:
		return xstrdup("stopped");
	}
}

static json_t *time_or_null(time_t t)
{
	return t ? json_integer((json_int_t)t) : json_null();
}

json_t *sv_info_json(const struct sv_process *p)
{
	return json_pack("{s:o,s:{s:o,s:b,s:o,s:o,s:o}}", "config", sv_config_to_json(&p->cfg), "state",
			 "status", status_json(p), "started", p->started, "pid",
			 p->pid > 0 ? json_integer(p->pid) : json_null(), "started_at",
			 time_or_null(p->started_at), "stopped_at", time_or_null(p->stopped_at));
}

json_t *sv_list_json(const struct sv *s)
{
	json_t *a = json_array();

	for (size_t i = 0; i < s->n; i++)
		json_array_append_new(a, sv_info_json(s->procs[i]));
	return a;
}
