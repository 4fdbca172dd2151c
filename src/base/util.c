/* Base utilities (see mg_util.h): kept free of MPI and HDF5 so that every module and
 * tool can link them. */
#include "mg_util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mg_error.h"

double mg_clock_seconds(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

double mg_now(void) { return mg_clock_seconds(CLOCK_MONOTONIC); }

void mg_mkdir_p(const char *dir)
{
    char path[1024];
    snprintf(path, sizeof path, "%s", dir);
    for (char *p = path + 1;; p++) {
        if (*p == '/' || *p == 0) {
            char saved = *p;
            *p = 0;
            if (mkdir(path, 0777) != 0 && errno != EEXIST)
                MG_FAIL(path, "check permissions and the path", "cannot create directory: %s", strerror(errno));
            *p = saved;
            if (!saved)
                break;
        }
    }
}

void mg_tmp_path(char *tmp, size_t size, const char *path)
{
    snprintf(tmp, size, "%s.tmp-%ld", path, (long)getpid());
}

/* fsync of a file or directory; on failure removes tmp (when given) and fails. */
static void fsync_path(const char *path, bool directory, const char *tmp)
{
    int fd = open(path, directory ? O_RDONLY | O_DIRECTORY : O_RDONLY);
    int err = fd < 0 ? errno : 0;
    if (fd >= 0 && fsync(fd) != 0)
        err = errno;
    if (fd >= 0)
        close(fd);
    if (err) {
        if (tmp)
            unlink(tmp);
        MG_FAIL(path, "check the disk", "fsync failed: %s", strerror(err));
    }
}

void mg_file_commit(const char *tmp, const char *path)
{
    fsync_path(tmp, false, tmp);
    if (rename(tmp, path) != 0) {
        int err = errno;
        unlink(tmp);
        MG_FAIL(path, "check permissions on the directory", "cannot rename %s into place: %s", tmp, strerror(err));
    }
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == dir)
        dir[1] = 0;
    else
        *slash = 0;
    fsync_path(dir, true, NULL);
}

uint64_t mg_checksum(const void *buf, size_t bytes)
{
    const unsigned char *p = buf;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < bytes; i++) {
        h ^= p[i];
        h *= 1099511628211ull;
    }
    return h;
}
