#pragma once

/* GLib's GMutex and GCond use futexes inside an uninstrumented libglib,
 * so ThreadSanitizer cannot see the ordering they give. Under TSan the
 * core marks each critical section by hand: acquire after locking,
 * release before unlocking. Elsewhere the marks compile to nothing. */

#if defined(__SANITIZE_THREAD__)
#define JARVIS_TSAN 1
#elif defined(__has_feature)
#if __has_feature (thread_sanitizer)
#define JARVIS_TSAN 1
#endif
#endif

#ifdef JARVIS_TSAN
#include <sanitizer/tsan_interface.h>
#define _jarvis_tsan_acquire(address) __tsan_acquire ((void *) (address))
#define _jarvis_tsan_release(address) __tsan_release ((void *) (address))
#else
#define _jarvis_tsan_acquire(address) ((void) (address))
#define _jarvis_tsan_release(address) ((void) (address))
#endif
