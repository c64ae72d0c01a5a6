/* Allocates BLOCK_SIZE bytes for every delta, touches them, and keeps them
 * until the request's complete event, when it frees them. Shutdown frees
 * what requests still held. */

#include <jarvis/jarvis.h>

#include <string.h>

#define BLOCK_SIZE (256 * 1024)

static void
free_blocks (gpointer data)
{
  g_ptr_array_unref (data);
}

static void
allocate_block (JarvisEvent *event,
                gpointer     user_data)
{
  GHashTable *blocks_by_request = user_data;
  const char *request_id = jarvis_event_get_request_id (event);
  GPtrArray *blocks = g_hash_table_lookup (blocks_by_request, request_id);
  char *block = g_malloc (BLOCK_SIZE);

  if (blocks == NULL)
    {
      blocks = g_ptr_array_new_with_free_func (g_free);
      g_hash_table_insert (blocks_by_request, g_strdup (request_id), blocks);
    }

  memset (block, blocks->len & 0xff, BLOCK_SIZE);
  g_ptr_array_add (blocks, block);
}

static void
release_blocks (JarvisEvent *event,
                gpointer     user_data)
{
  GHashTable *blocks_by_request = user_data;

  g_hash_table_remove (blocks_by_request, jarvis_event_get_request_id (event));
}

static void
copy_and_return (JarvisEvent      *event,
                 JarvisInvocation *invocation,
                 gpointer          user_data)
{
  gsize length;
  const char *text = jarvis_event_get_text (event, &length);
  g_autofree char *copy = g_malloc (length + BLOCK_SIZE);

  memcpy (copy, text, length);
  jarvis_invocation_return (invocation);
}

static gboolean
init (JarvisPlugin  *plugin,
      GError       **error)
{
  GHashTable *blocks_by_request = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, free_blocks);

  jarvis_plugin_set_data (plugin, blocks_by_request, (GDestroyNotify) g_hash_table_unref);
  jarvis_plugin_subscribe (plugin, JARVIS_EVENT_STREAM_DELTA, allocate_block, blocks_by_request, NULL);
  jarvis_plugin_subscribe (plugin, JARVIS_EVENT_STREAM_COMPLETE, release_blocks, blocks_by_request, NULL);
  jarvis_plugin_subscribe_async (plugin, JARVIS_EVENT_STREAM_DELTA, copy_and_return, NULL, NULL);

  return TRUE;
}

JARVIS_PLUGIN_DEFINE ("hostile_heavy_alloc", "1.0",
                      "Allocates a large block per delta",
                      "MIT", init, NULL)
