/* Logging to stderr with a level prefix. */
#include "lib/log.h"

#include <stdarg.h>
#include <stdio.h>

enum kxp_log_level kxp_log_level = KXP_LOG_INFO;

void kxp_log(enum kxp_log_level lvl, const char *fmt, ...)
{
	static const char *const pfx[] = { "error", "warning", "info", "debug" };
	va_list ap;

	if (lvl > kxp_log_level)
		return;
	fprintf(stderr, "kxp: %s: ", pfx[lvl]);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}
