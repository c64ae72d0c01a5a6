#pragma once

#include <json-glib/json-glib.h>

#include "jarvis-decoder.h"

G_BEGIN_DECLS

/*
 * State of one provider stream (openai, anthropic or ollama), shared by the
 * mappings: which request it is, whether it has started, finished or
 * failed, and where its events go. A provider input is one request.
 */
typedef struct _JarvisProviderStream JarvisProviderStream;

JarvisProviderStream *jarvis_provider_stream_new (JarvisDecoderEventFunc event_func,
                                                  gpointer               user_data);

void jarvis_provider_stream_free (JarvisProviderStream *stream);

void jarvis_provider_stream_set_fallback_id (JarvisProviderStream *stream,
                                             const char           *request_id);

void jarvis_provider_stream_set_session_id (JarvisProviderStream *stream,
                                            const char           *session_id);

gboolean jarvis_provider_stream_is_open (JarvisProviderStream *stream);

gboolean jarvis_provider_stream_is_closed (JarvisProviderStream *stream);

const char *jarvis_provider_stream_get_request_id (JarvisProviderStream *stream);

void jarvis_provider_stream_open (JarvisProviderStream *stream,
                                  const char           *own_id,
                                  const char           *model);

void jarvis_provider_stream_emit_text (JarvisProviderStream *stream,
                                       const char           *event_type,
                                       const char           *text,
                                       guint                 choice);

void jarvis_provider_stream_emit_payload (JarvisProviderStream *stream,
                                          const char           *event_type,
                                          JsonNode             *payload,
                                          const char           *text,
                                          guint                 choice);

void jarvis_provider_stream_emit_usage (JarvisProviderStream *stream,
                                        JsonObject           *usage);

void jarvis_provider_stream_fail (JarvisProviderStream *stream,
                                  JsonNode             *error_node);

void jarvis_provider_stream_set_finish_reason (JarvisProviderStream *stream,
                                               const char           *reason);

gboolean jarvis_provider_stream_has_finish_reason (JarvisProviderStream *stream);

void jarvis_provider_stream_end (JarvisProviderStream *stream);

gboolean jarvis_provider_stream_check_ended (JarvisProviderStream  *stream,
                                             gboolean               finish_reason_ends,
                                             const char            *end_marker,
                                             GError               **error);

/* Provider mappings: each turns one JSON record of its provider into
 * events on @stream. @sse_event_type is the SSE `event:` field, or NULL for
 * a JSON Lines record. On FALSE the record was rejected and nothing was
 * emitted for it. */
gboolean jarvis_openai_map_chunk (JarvisProviderStream  *stream,
                                  JsonObject            *chunk,
                                  const char            *sse_event_type,
                                  GError               **error);

gboolean jarvis_openai_map_done (JarvisProviderStream  *stream,
                                 GError               **error);

gboolean jarvis_anthropic_map_event (JarvisProviderStream  *stream,
                                     JsonObject            *event,
                                     const char            *sse_event_type,
                                     GError               **error);

gboolean jarvis_ollama_map_line (JarvisProviderStream  *stream,
                                 JsonObject            *line,
                                 GError               **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (JarvisProviderStream, jarvis_provider_stream_free)

G_END_DECLS
