#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <dlfcn.h>
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

/* Returns whether the dynamic linker has loaded an object under @name.
 * The descriptor behind @name must not be a shared object, so that only a
 * match by name, never one by file, can succeed. */
static gboolean
is_object_name_loaded (const char *name)
{
  void *handle = dlopen (name, RTLD_LAZY | RTLD_NOLOAD);

  if (handle == NULL)
    return FALSE;

  dlclose (handle);
  return TRUE;
}

char *
_jarvis_trust_dup_load_path (int *fd)
{
  g_autoptr(GArray) held = g_array_new (FALSE, FALSE, sizeof (int));
  char *load_path = NULL;

  g_assert (fd != NULL && *fd >= 0);

  /* Both GModule and the dynamic linker return an object already known
   * under the same name without opening the file again. ld.so also adds
   * every name under which it met a file to that file's object, so a
   * /proc/self/fd/N name stays taken while the object is loaded, even
   * after N is closed and reused. Each candidate number is tried with
   * /dev/null behind it, and taken numbers stay open meanwhile, so the
   * next candidate differs and the loop ends. */
  while (load_path == NULL)
    {
      g_autofree char *candidate = NULL;
      int placeholder = g_open ("/dev/null", O_RDONLY | O_CLOEXEC, 0);

      if (placeholder < 0)
        break;

      candidate = g_strdup_printf ("/proc/self/fd/%d", placeholder);
      if (is_object_name_loaded (candidate))
        {
          g_array_append_val (held, placeholder);
          continue;
        }

      if (dup3 (*fd, placeholder, O_CLOEXEC) < 0)
        {
          int saved_errno = errno;

          g_close (placeholder, NULL);
          errno = saved_errno;
          break;
        }

      g_close (*fd, NULL);
      *fd = placeholder;
      load_path = g_steal_pointer (&candidate);
    }

  for (guint i = 0; i < held->len; i++)
    g_close (g_array_index (held, int, i), NULL);

  return load_path;
}
