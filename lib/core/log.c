/*
 * log.c — see log.h. Lines are formatted into one buffer and written with a
 * single write(2) so concurrent threads never interleave within a line.
 */
#include "core/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static struct {
	const char *tag;
	enum log_level level;
} log_cfg = {NULL, LOG_LVL_INFO};

static const char *const level_names[] = {"error", "warn", "info", "debug", "trace"};
static const char *const level_labels[] = {"ERROR", "WARN ", "INFO ", "DEBUG", "TRACE"};

void log_init(const char *tag, enum log_level level)
{
	log_cfg.tag = tag;
	log_cfg.level = level;
}

enum log_level log_get_level(void)
{
	return log_cfg.level;
}

int log_level_parse(const char *s, enum log_level *out)
{
	for (unsigned i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcasecmp(s, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	if (strcasecmp(s, "warning") == 0 || strcasecmp(s, "critical") == 0) {
		*out = strcasecmp(s, "warning") == 0 ? LOG_LVL_WARN : LOG_LVL_ERROR;
		return 0;
	}
	return -1;
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
	char line[4096];
	struct timeval tv;
	struct tm tm;
	size_t n;
	va_list ap;

	if (lvl > log_cfg.level)
		return;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	n += (size_t)snprintf(line + n, sizeof(line) - n, ".%03ldZ %s %s%s", (long)tv.tv_usec / 1000,
			      level_labels[lvl], log_cfg.tag ? log_cfg.tag : "", log_cfg.tag ? ": " : "");
	va_start(ap, fmt);
	if (n < sizeof(line))
		n += (size_t)vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	va_end(ap);
	if (n >= sizeof(line) - 1)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	if (write(STDERR_FILENO, line, n) < 0) {
		/* Nothing sensible to do if stderr is gone. */
	}
}
