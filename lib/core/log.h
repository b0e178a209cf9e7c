/*
 * log.h — leveled logging to stderr (journald/supervisor capture it).
 *
 * One line per event: "2026-11-24T10:00:00.123Z INFO  kms: message". The
 * level and the component tag are the only process-wide settings, written once
 * at startup from parsed config, before any thread starts.
 */
#ifndef DSTACK_CORE_LOG_H
#define DSTACK_CORE_LOG_H

enum log_level { LOG_LVL_ERROR, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG, LOG_LVL_TRACE };

/* Called once at startup. tag may be NULL. */
void log_init(const char *tag, enum log_level level);
/* Parse "error|warn|info|debug|trace"; returns -1 on unknown names. */
int log_level_parse(const char *s, enum log_level *out);
enum log_level log_get_level(void);

void log_msg(enum log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)
#define log_trace(...) log_msg(LOG_LVL_TRACE, __VA_ARGS__)

#endif
