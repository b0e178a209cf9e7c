/*
 * testproc.h — helpers for the KMS and auth-simple integration tests: pick
 * a free loopback port, spawn a program with extra environment and its
 * stderr in a log file, wait for a port to accept, stop it. Header-only
 * so each test binary stays one file.
 */
#ifndef DSTACK_TESTS_KMS_TESTPROC_H
#define DSTACK_TESTS_KMS_TESTPROC_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static inline uint16_t tp_free_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t l = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	uint16_t port;

	bind(fd, (struct sockaddr *)&a, sizeof(a));
	getsockname(fd, (struct sockaddr *)&a, &l);
	port = ntohs(a.sin_port);
	close(fd);
	return port;
}

static inline int tp_port_open(uint16_t port)
{
	struct sockaddr_in a = {
	    .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int fd = socket(AF_INET, SOCK_STREAM, 0), rc;

	rc = connect(fd, (struct sockaddr *)&a, sizeof(a));
	close(fd);
	return rc == 0;
}

/* Spawn argv with env entries "K=V" added (NULL-terminated); cwd may be NULL;
 * stderr+stdout go to log (appended). */
static inline pid_t tp_spawn(char *const argv[], const char *const *env, const char *cwd, const char *log)
{
	pid_t pid = fork();

	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);

		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
			close(fd);
		}
		for (const char *const *p = env; p && *p; p++)
			putenv((char *)*p);
		if (cwd && chdir(cwd) < 0)
			_exit(126);
		execv(argv[0], argv);
		_exit(127);
	}
	return pid;
}

/* Wait until port accepts or the child exits; returns 1 on success. */
static inline int tp_wait_port(pid_t pid, uint16_t port, double seconds)
{
	struct timespec ts = {0, 50 * 1000 * 1000};
	int status;

	for (int i = 0; i < (int)(seconds * 20); i++) {
		if (tp_port_open(port))
			return 1;
		if (waitpid(pid, &status, WNOHANG) == pid)
			return 0;
		nanosleep(&ts, NULL);
	}
	return 0;
}

/* Wait for exit up to seconds; returns the wait status, or -1 on timeout. */
static inline int tp_wait_exit(pid_t pid, double seconds)
{
	struct timespec ts = {0, 50 * 1000 * 1000};
	int status;

	for (int i = 0; i < (int)(seconds * 20); i++) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return status;
		nanosleep(&ts, NULL);
	}
	return -1;
}

static inline void tp_stop(pid_t pid)
{
	if (pid <= 0)
		return;
	kill(pid, SIGTERM);
	if (tp_wait_exit(pid, 5) == -1) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
}

static inline void tp_sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

#endif
