#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Structured log capture for the reliability programs.
 *
 * With G_LOG_USE_STRUCTURED, g_test_expect_message() receives no lines, so
 * these programs install their own writer. It keeps warnings, criticals and
 * messages, and debug and info lines only while capture of all levels is
 * on. A warning or critical that matches none of the allowed patterns is
 * printed to stderr and counted as unexpected. The writer may be called
 * from any thread. With JARVIS_RELIABILITY_TRACE set
 * in the environment, every captured line is also printed to stderr. */

void reliability_log_init (void);

/* Turns capture of debug and info lines on or off. It also turns GLib's
 * debug output on, which buses created afterwards check before they format
 * their lifecycle lines. */
void reliability_log_set_capture_all (gboolean enabled);

/* Allows warnings and criticals whose "DOMAIN: MESSAGE" text matches the
 * glob @pattern, until reliability_log_reset(). */
void reliability_log_allow (const char *pattern);

/* Forgets the allowed patterns and the captured lines. */
void reliability_log_reset (void);

/* Counts captured lines at one of the levels in @level whose "DOMAIN: MESSAGE" text
 * matches the glob @pattern. */
guint reliability_log_count (GLogLevelFlags level,
                             const char    *pattern);

guint reliability_log_get_n_unexpected (void);

/* Prints the warnings and criticals captured since the last reset. */
void reliability_log_dump (void);

G_END_DECLS
