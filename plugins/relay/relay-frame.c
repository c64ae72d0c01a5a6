#include "relay-frame.h"

#include <json-glib/json-glib.h>

/* Adds the request's counters from a complete event's `a{sv}` payload.
 * Only unsigned 64-bit values are counters, so `outcome` and `error` are
 * left to the caller. */
static void
add_counters (JsonBuilder *builder,
              GVariant    *payload)
{
  GVariantIter iter;
  const char *key;
  GVariant *value;

  json_builder_set_member_name (builder, "counters");
  json_builder_begin_object (builder);

  g_variant_iter_init (&iter, payload);
  while (g_variant_iter_loop (&iter, "{&sv}", &key, &value))
    {
      if (!g_variant_is_of_type (value, G_VARIANT_TYPE_UINT64))
        continue;

      json_builder_set_member_name (builder, key);
      json_builder_add_int_value (builder, (gint64) g_variant_get_uint64 (value));
    }

  json_builder_end_object (builder);
}

static void
add_string_member (JsonBuilder *builder,
                   const char  *name,
                   const char  *value)
{
  if (value == NULL)
    return;

  json_builder_set_member_name (builder, name);
  json_builder_add_string_value (builder, value);
}

/* Maps a bus event type to the SSE event name the page listens to, or
 * NULL for types the relay does not forward. */
static const char *
sse_event_name (JarvisEvent *event)
{
  if (jarvis_event_has_type (event, JARVIS_EVENT_STREAM_START))
    return "start";
  if (jarvis_event_has_type (event, JARVIS_EVENT_STREAM_FLUSH))
    return "flush";
  if (jarvis_event_has_type (event, JARVIS_EVENT_STREAM_COMPLETE))
    return "complete";

  return NULL;
}

static GBytes *
format_frame (guint64      id,
              const char  *event_name,
              JsonBuilder *builder)
{
  g_autoptr(JsonNode) root = json_builder_get_root (builder);
  g_autofree char *data = json_to_string (root, FALSE);
  GString *text = g_string_new (NULL);

  /* json-glib escapes control characters inside strings, so the compact
   * form is a single line and fits in one `data:` field. */
  if (id > 0)
    g_string_append_printf (text, "id: %" G_GUINT64_FORMAT "\n", id);
  g_string_append_printf (text, "event: %s\ndata: %s\n\n", event_name, data);

  return g_string_free_to_bytes (text);
}

static RelayFrame *
frame_new (guint64     id,
           const char *request_id,
           GBytes     *text)
{
  RelayFrame *frame = g_new0 (RelayFrame, 1);

  g_atomic_ref_count_init (&frame->ref_count);
  frame->id = id;
  frame->request_id = g_strdup (request_id);
  frame->text = text;

  return frame;
}

/* Builds the frame for a start, flush or complete event. Returns NULL for
 * any other event type. */
RelayFrame *
relay_frame_new_from_event (JarvisEvent *event,
                            guint64      id)
{
  g_autoptr(JsonBuilder) builder = json_builder_new ();
  const char *event_name = sse_event_name (event);
  const char *request_id = jarvis_event_get_request_id (event);
  GVariant *payload = jarvis_event_get_payload (event);

  g_assert (id > 0);

  if (event_name == NULL)
    return NULL;

  json_builder_begin_object (builder);
  add_string_member (builder, "request_id", request_id);
  add_string_member (builder, "session_id", jarvis_event_get_session_id (event));
  add_string_member (builder, "trace_id", jarvis_event_get_trace_id (event));

  if (jarvis_event_has_type (event, JARVIS_EVENT_STREAM_FLUSH))
    {
      gsize length = 0;
      const char *text = jarvis_event_get_text (event, &length);

      json_builder_set_member_name (builder, "choice");
      json_builder_add_int_value (builder, jarvis_event_get_choice (event));
      json_builder_set_member_name (builder, "tokens");
      json_builder_add_int_value (builder, jarvis_event_get_token_count (event));
      json_builder_set_member_name (builder, "bytes");
      json_builder_add_int_value (builder, (gint64) length);
      add_string_member (builder, "text", text != NULL ? text : "");
    }

  if (jarvis_event_has_type (event, JARVIS_EVENT_STREAM_COMPLETE) && payload != NULL)
    {
      const char *error = NULL;

      add_string_member (builder, "outcome", jarvis_event_get_outcome (event));
      if (g_variant_lookup (payload, "error", "&s", &error))
        add_string_member (builder, "error", error);
      add_counters (builder, payload);
    }

  json_builder_end_object (builder);

  return frame_new (id, request_id, format_frame (id, event_name, builder));
}

/* Builds a frame without an id, so that it leaves the client's
 * `Last-Event-ID` as it is. */
RelayFrame *
relay_frame_new_gap (const char *request_id)
{
  g_autoptr(JsonBuilder) builder = json_builder_new ();

  json_builder_begin_object (builder);
  add_string_member (builder, "request_id", request_id);
  json_builder_end_object (builder);

  return frame_new (0, request_id, format_frame (0, "gap", builder));
}

RelayFrame *
relay_frame_ref (RelayFrame *frame)
{
  g_atomic_ref_count_inc (&frame->ref_count);

  return frame;
}

void
relay_frame_unref (RelayFrame *frame)
{
  if (frame == NULL || !g_atomic_ref_count_dec (&frame->ref_count))
    return;

  g_free (frame->request_id);
  g_bytes_unref (frame->text);
  g_free (frame);
}

typedef struct
{
  char *request_id;       /* owned */
  GQueue frames;          /* owned RelayFrame refs, oldest first */
  guint64 last_evicted_id; /* 0 while nothing was evicted */
} HistoryRecord;

struct _RelayHistory
{
  guint max_frames;
  guint max_requests;
  GHashTable *records;    /* request id -> owned HistoryRecord */
  GQueue order;           /* HistoryRecord pointers owned by records, oldest first */
};

static void
history_record_free (gpointer data)
{
  HistoryRecord *record = data;

  g_queue_clear_full (&record->frames, (GDestroyNotify) relay_frame_unref);
  g_free (record->request_id);
  g_free (record);
}

RelayHistory *
relay_history_new (guint max_frames,
                   guint max_requests)
{
  RelayHistory *history = g_new0 (RelayHistory, 1);

  g_assert (max_frames >= 2);
  g_assert (max_requests > 0);

  history->max_frames = max_frames;
  history->max_requests = max_requests;
  history->records = g_hash_table_new_full (g_str_hash, g_str_equal,
                                            NULL, history_record_free);
  g_queue_init (&history->order);

  return history;
}

void
relay_history_free (RelayHistory *history)
{
  if (history == NULL)
    return;

  g_queue_clear (&history->order);
  g_hash_table_unref (history->records);
  g_free (history);
}

static HistoryRecord *
lookup_or_add_record (RelayHistory *history,
                      const char   *request_id)
{
  HistoryRecord *record = g_hash_table_lookup (history->records, request_id);

  if (record != NULL)
    return record;

  if (g_queue_get_length (&history->order) >= history->max_requests)
    {
      HistoryRecord *oldest = g_queue_pop_head (&history->order);

      g_hash_table_remove (history->records, oldest->request_id);
    }

  record = g_new0 (HistoryRecord, 1);
  record->request_id = g_strdup (request_id);
  g_queue_init (&record->frames);
  g_hash_table_insert (history->records, record->request_id, record);
  g_queue_push_tail (&history->order, record);

  return record;
}

void
relay_history_append (RelayHistory *history,
                      RelayFrame   *frame)
{
  HistoryRecord *record = lookup_or_add_record (history, frame->request_id);

  g_queue_push_tail (&record->frames, relay_frame_ref (frame));

  /* The first frame, usually the start, stays so that a resumed page still
   * knows the request's session; the oldest frame after it goes. */
  if (g_queue_get_length (&record->frames) > history->max_frames)
    {
      g_autoptr(RelayFrame) evicted = g_queue_pop_nth (&record->frames, 1);

      record->last_evicted_id = evicted->id;
    }
}

/* A frame to replay and its position: its own id, or for a gap frame the
 * id of the last evicted frame that it replaces. */
typedef struct
{
  guint64 position;
  RelayFrame *frame;
} ReplayItem;

static gint
compare_positions (gconstpointer a,
                   gconstpointer b)
{
  const ReplayItem *item_a = a;
  const ReplayItem *item_b = b;

  return (item_a->position > item_b->position) - (item_a->position < item_b->position);
}

static void
replay_item_clear (gpointer data)
{
  ReplayItem *item = data;

  relay_frame_unref (item->frame);
}

GBytes *
relay_history_dup_since (RelayHistory *history,
                         guint64       last_id)
{
  g_autoptr(GArray) missed = g_array_new (FALSE, FALSE, sizeof (ReplayItem));
  GString *text = g_string_new (NULL);

  g_array_set_clear_func (missed, replay_item_clear);

  for (GList *l = history->order.head; l != NULL; l = l->next)
    {
      HistoryRecord *record = l->data;

      if (record->last_evicted_id > last_id)
        {
          ReplayItem gap = { record->last_evicted_id, relay_frame_new_gap (record->request_id) };

          g_array_append_val (missed, gap);
        }

      for (GList *f = record->frames.head; f != NULL; f = f->next)
        {
          RelayFrame *frame = f->data;
          ReplayItem item = { frame->id, NULL };

          if (frame->id <= last_id || frame->cancelled)
            continue;

          item.frame = relay_frame_ref (frame);
          g_array_append_val (missed, item);
        }
    }

  g_array_sort (missed, compare_positions);

  for (guint i = 0; i < missed->len; i++)
    {
      RelayFrame *frame = g_array_index (missed, ReplayItem, i).frame;

      g_string_append_len (text,
                           g_bytes_get_data (frame->text, NULL),
                           g_bytes_get_size (frame->text));
    }

  return g_string_free_to_bytes (text);
}
