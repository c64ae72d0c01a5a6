#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "jarvis/jarvis.h"
#include "jarvis-trust-private.h"

/* Returns whether @st belongs to root or to the effective user and cannot be
 * written by group or others. Either would let another account replace code
 * that this process is about to run. */
static gboolean
check_owner_and_mode (const struct stat  *st,
                      const char         *what,
                      const char         *path,
                      GError            **error)
{
  uid_t euid = geteuid ();

  if (st->st_uid != 0 && st->st_uid != euid)
    {
      g_set_error (error, JARVIS_PLUGIN_ERROR, JARVIS_PLUGIN_ERROR_UNTRUSTED,
                   "Untrusted plugin %s “%s”: owned by uid %u, expected root "
                   "or uid %u; fix the owner or allow untrusted plugins",
                   what, path, (guint) st->st_uid, (guint) euid);
      return FALSE;
    }

  if ((st->st_mode & (S_IWGRP | S_IWOTH)) != 0)
    {
      g_set_error (error, JARVIS_PLUGIN_ERROR, JARVIS_PLUGIN_ERROR_UNTRUSTED,
                   "Untrusted plugin %s “%s”: mode %04o is writable by %s; "
                   "run “chmod go-w” on it or allow untrusted plugins",
                   what, path, (guint) (st->st_mode & 07777),
                   (st->st_mode & S_IWOTH) != 0 ? "others" : "group");
      return FALSE;
    }

  return TRUE;
}

/* Opens the directory that contains @path and checks it. The file is then
 * opened relative to this descriptor, so the directory checked is the one
 * the file is read from, even if a path component is renamed meanwhile. */
static int
open_directory (const char  *path,
                gboolean     allow_untrusted,
                GError     **error)
{
  g_autofree char *directory = g_path_get_dirname (path);
  struct stat st;
  int dir_fd;
  int saved_errno;

  dir_fd = g_open (directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
  saved_errno = errno;
  if (dir_fd < 0)
    {
      g_set_error (error, JARVIS_PLUGIN_ERROR,
                   saved_errno == ENOENT || saved_errno == ENOTDIR
                   ? JARVIS_PLUGIN_ERROR_NOT_FOUND
                   : JARVIS_PLUGIN_ERROR_UNTRUSTED,
                   "Cannot open plugin directory “%s”: %s",
                   directory, g_strerror (saved_errno));
      return -1;
    }

  if (fstat (dir_fd, &st) != 0)
    {
      saved_errno = errno;
      g_set_error (error, JARVIS_PLUGIN_ERROR, JARVIS_PLUGIN_ERROR_UNTRUSTED,
                   "Cannot check plugin directory “%s”: %s",
                   directory, g_strerror (saved_errno));
      g_close (dir_fd, NULL);
      return -1;
    }

  if (!allow_untrusted && !check_owner_and_mode (&st, "directory", directory, error))
    {
      g_close (dir_fd, NULL);
      return -1;
    }

  return dir_fd;
}

int
_jarvis_trust_open_plugin (const char  *path,
                           gboolean     allow_untrusted,
                           GError     **error)
{
  g_autofree char *basename = NULL;
  struct stat st;
  int dir_fd;
  int fd;
  int saved_errno;

  g_assert (path != NULL);
  g_assert (error == NULL || *error == NULL);

  dir_fd = open_directory (path, allow_untrusted, error);
  if (dir_fd < 0)
    return -1;

  /* O_NOFOLLOW rejects a symbolic link as the last component: the link
   * could be retargeted after the check. O_NONBLOCK keeps a FIFO that
   * carries a plugin's name from blocking the open; fstat rejects it next. */
  basename = g_path_get_basename (path);
  fd = openat (dir_fd, basename, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  saved_errno = errno;
  g_close (dir_fd, NULL);

  if (fd < 0)
    {
      if (saved_errno == ENOENT)
        g_set_error (error, JARVIS_PLUGIN_ERROR, JARVIS_PLUGIN_ERROR_NOT_FOUND,
                     "Plugin file “%s” does not exist", path);
      else if (saved_errno == ELOOP)
        g_set_error (error, JARVIS_PLUGIN_ERROR, JARVIS_PLUGIN_ERROR_UNTRUSTED,
                     "Untrusted plugin file “%s”: it is a symbolic link; "
                     "install the file itself", path);
      else
        g_set_error (error, JARVIS_PLUGIN_ERROR, JARVIS_PLUGIN_ERROR_UNTRUSTED,
                     "Cannot open plugin file “%s”: %s",
                     path, g_strerror (saved_errno));
      return -1;
    }

  if (fstat (fd, &st) != 0)
    {
      saved_errno = errno;
      g_set_error (error, JARVIS_PLUGIN_ERROR, JARVIS_PLUGIN_ERROR_UNTRUSTED,
                   "Cannot check plugin file “%s”: %s",
                   path, g_strerror (saved_errno));
      g_close (fd, NULL);
      return -1;
    }

  if (!S_ISREG (st.st_mode))
    {
      g_set_error (error, JARVIS_PLUGIN_ERROR, JARVIS_PLUGIN_ERROR_NOT_A_PLUGIN,
                   "Plugin file “%s” is not a regular file", path);
      g_close (fd, NULL);
      return -1;
    }

  if (!allow_untrusted && !check_owner_and_mode (&st, "file", path, error))
    {
      g_close (fd, NULL);
      return -1;
    }

  return fd;
}

static int
match_object_name (struct dl_phdr_info *info,
                   size_t               size,
                   void                *data)
{
  return g_strcmp0 (info->dlpi_name, data) == 0;
}

static gboolean
is_object_name_loaded (const char *name)
{
  return dl_iterate_phdr (match_object_name, (void *) name) != 0;
}

char *
_jarvis_trust_dup_load_path (int *fd)
{
  g_autoptr(GArray) held = g_array_new (FALSE, FALSE, sizeof (int));
  char *load_path;

  g_assert (fd != NULL && *fd >= 0);

  /* Both GModule and the dynamic linker return an object already loaded
   * under the same name without opening the file again. A plugin loaded
   * earlier through a descriptor number that was since closed and reused
   * would be returned in place of this file. Duplicating the descriptor
   * while holding the old number yields a fresh number, so this loop ends
   * after at most one step per loaded object. */
  load_path = g_strdup_printf ("/proc/self/fd/%d", *fd);
  while (is_object_name_loaded (load_path))
    {
      int duplicate = fcntl (*fd, F_DUPFD_CLOEXEC, 0);

      if (duplicate < 0)
        {
          g_clear_pointer (&load_path, g_free);
          break;
        }

      g_array_append_val (held, *fd);
      *fd = duplicate;
      g_free (load_path);
      load_path = g_strdup_printf ("/proc/self/fd/%d", *fd);
    }

  for (guint i = 0; i < held->len; i++)
    g_close (g_array_index (held, int, i), NULL);

  return load_path;
}
