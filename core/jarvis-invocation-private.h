#pragma once

#include "jarvis/jarvis.h"

G_BEGIN_DECLS

typedef struct _JarvisCompletion JarvisCompletion;

/* The invocations filed under one request, or under the bus itself for
 * events outside any request and for complete events. */
typedef struct
{
  GQueue invocations;           /* JarvisInvocation *, linked by scope_link */
  gpointer request;             /* JarvisRequest *, or NULL for the bus scope */
} JarvisScope;

enum
{
  INVOCATION_RETURNED = 1 << 0, /* set by the first return, any thread */
  INVOCATION_CANCELLED = 1 << 1,/* set by the bus thread */
  INVOCATION_DETACHED = 1 << 2, /* set by the bus thread under the completion lock */
};

/* A plain struct rather than a GObject or GTask, because one is created per
 * async handler call: see the size budget in the benchmark page. */
struct _JarvisInvocation
{
  JarvisCompletion *completion; /* borrowed; a ref is taken when detached */
  JarvisEvent *event;           /* owned */
  JarvisPlugin *plugin;         /* borrowed; NULL once detached */
  char *plugin_name;            /* GRefString; borrowed from the plugin, owned once detached */
  JarvisScope *scope;           /* NULL once detached */
  GCancellable *cancellable;    /* owned, created on demand under the completion lock */
  GError *error;                /* owned; written by the returning thread */
  gint flags;                   /* atomic INVOCATION_* bits */
  GList scope_link;
  GList plugin_link;
  JarvisInvocation *next_returned;  /* completion list, under its lock */
};

/* Called in the bus thread for each returned invocation that is still
 * attached. It must unlink and free the invocation. */
typedef void (*JarvisCompletionFunc) (JarvisInvocation *invocation,
                                      gpointer          user_data);

JarvisCompletion *_jarvis_completion_new (GMainContext         *context,
                                          JarvisCompletionFunc  func,
                                          gpointer              user_data);

void _jarvis_completion_shutdown (JarvisCompletion *completion);

void _jarvis_completion_unref (JarvisCompletion *completion);

JarvisInvocation *_jarvis_invocation_new (JarvisCompletion *completion,
                                          JarvisEvent      *event,
                                          JarvisPlugin     *plugin,
                                          char             *plugin_name,
                                          JarvisScope      *scope);

void _jarvis_invocation_cancel (JarvisInvocation *invocation);

gboolean _jarvis_invocation_detach (JarvisInvocation *invocation);

void _jarvis_invocation_free (JarvisInvocation *invocation);

G_END_DECLS
