/* Logging for binaries (not for library code, which returns errors). */
#ifndef KXP_LOG_H
#define KXP_LOG_H

enum kxp_log_level { KXP_LOG_ERROR, KXP_LOG_WARN, KXP_LOG_INFO, KXP_LOG_DEBUG };

extern enum kxp_log_level kxp_log_level;
void kxp_log(enum kxp_log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define pr_err(...) kxp_log(KXP_LOG_ERROR, __VA_ARGS__)
#define pr_warn(...) kxp_log(KXP_LOG_WARN, __VA_ARGS__)
#define pr_info(...) kxp_log(KXP_LOG_INFO, __VA_ARGS__)
#define pr_debug(...) kxp_log(KXP_LOG_DEBUG, __VA_ARGS__)

#endif
