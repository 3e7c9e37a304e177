/*
 * powerloss.c: an LD_PRELOAD shim that keeps a "durable image" of a data
 * directory, so a test can simulate a power loss by replacing the data
 * directory with the image after kill -9 (the page cache, which survives a
 * plain kill -9, is what a power loss throws away).
 *
 * Model (see RELIABILITY.md, "Power loss"):
 *   - fsync/fdatasync of a regular file under POWERLOSS_ROOT copies the
 *     file's current content to the same path under POWERLOSS_IMAGE (the
 *     content is durable from then on; later unsynced writes are not).
 *   - fsync/fdatasync of a directory under the root makes its entries
 *     durable: image entries gone from the real directory are removed
 *     (unlink, rename away), a file renamed within the directory keeps its
 *     synced content under its new name (matched by inode), new
 *     subdirectories appear, and files never synced appear empty.
 *   - syncfs/sync copy the whole root.
 *   - rename/unlink themselves are not intercepted: fjall renames through
 *     rustix (raw syscalls, no libc symbol), so only the directory fsync,
 *     which goes through libc, is a reliable point to observe them.
 *   - POWERLOSS_NOSYNC_UNDER=<path>: fsync/fdatasync of anything under that
 *     path return 0 without syncing or updating the image ("sync off").
 *   - POWERLOSS_LOG=<file>: one line per intercepted call, for checking the
 *     shim sees every fsync strace sees.
 * Without POWERLOSS_ROOT and POWERLOSS_IMAGE every call falls through to
 * the real one (dlsym(RTLD_NEXT)). Errors of the shim's own copying are
 * reported to stderr and never change what the real call returns.
 *
 * Build: cc -shared -fPIC -O2 -o libpowerloss.so powerloss.c -ldl
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TMP_SUFFIX ".powerloss-tmp"
#define MAX_TRACKED 2048

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static int (*real_syncfs)(int);
static void (*real_sync)(void);

/* Inode of each image file, so a rename seen at the directory fsync keeps
 * the synced content (ring buffer; an evicted entry only loses that). */
static struct tracked {
    dev_t dev;
    ino_t ino;
    char rel[240];
} tracked[MAX_TRACKED];
static unsigned next_tracked;

static void resolve(void) {
    if (!real_fsync) real_fsync = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    if (!real_fdatasync) real_fdatasync = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    if (!real_syncfs) real_syncfs = (int (*)(int))dlsym(RTLD_NEXT, "syncfs");
    if (!real_sync) real_sync = (void (*)(void))dlsym(RTLD_NEXT, "sync");
}

static void note(const char *what, const char *path) {
    const char *log = getenv("POWERLOSS_LOG");
    if (!log) return;
    FILE *f = fopen(log, "a");
    if (!f) return;
    fprintf(f, "%s %s\n", what, path);
    fclose(f);
}

static int under(const char *path, const char *prefix) {
    size_t n;
    if (!prefix || !*prefix) return 0;
    n = strlen(prefix);
    return strncmp(path, prefix, n) == 0 && (path[n] == '/' || path[n] == 0);
}

/* The path of fd relative to POWERLOSS_ROOT ("" for the root), or NULL. */
static const char *rel_of(int fd, char *abs, size_t len) {
    char link[64];
    const char *root = getenv("POWERLOSS_ROOT");
    ssize_t n;
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    n = readlink(link, abs, len - 1);
    if (n <= 0 || !root) return NULL;
    abs[n] = 0;
    if (!under(abs, root)) return NULL;
    return abs[strlen(root)] == '/' ? abs + strlen(root) + 1 : abs + strlen(root);
}

static void join(char *out, size_t len, const char *a, const char *b) {
    snprintf(out, len, "%s%s%s", a, *a && *b ? "/" : "", b);
}

static void mkdirs(const char *path) {
    char buf[PATH_MAX];
    char *p;
    snprintf(buf, sizeof buf, "%s", path);
    for (p = buf + 1; *p; p++) {
        if (*p == '/') {
            *p = 0;
            mkdir(buf, 0755);
            *p = '/';
        }
    }
    mkdir(buf, 0755);
}

static void track(const char *rel, const struct stat *st) {
    unsigned i;
    if (strlen(rel) >= sizeof tracked[0].rel) return;
    for (i = 0; i < MAX_TRACKED; i++)
        if (strcmp(tracked[i].rel, rel) == 0) break;
    if (i == MAX_TRACKED) i = next_tracked++ % MAX_TRACKED;
    tracked[i].dev = st->st_dev;
    tracked[i].ino = st->st_ino;
    snprintf(tracked[i].rel, sizeof tracked[i].rel, "%s", rel);
}

static struct tracked *tracked_by_rel(const char *rel) {
    unsigned i;
    for (i = 0; i < MAX_TRACKED; i++)
        if (tracked[i].rel[0] && strcmp(tracked[i].rel, rel) == 0) return &tracked[i];
    return NULL;
}

/* Copies the content of the file open as fd to image/rel, atomically. */
static void copy_fd(int fd, const char *rel, const struct stat *st) {
    char dst[PATH_MAX], tmp[PATH_MAX], dir[PATH_MAX], buf[65536];
    const char *image = getenv("POWERLOSS_IMAGE");
    char *slash, link[64];
    int in, out;
    off_t off = 0;
    ssize_t n;
    join(dst, sizeof dst, image, rel);
    snprintf(dir, sizeof dir, "%s", dst);
    slash = strrchr(dir, '/');
    if (slash) {
        *slash = 0;
        mkdirs(dir);
    }
    snprintf(tmp, sizeof tmp, "%s%s", dst, TMP_SUFFIX);
    /* fd may be write-only: read through a fresh descriptor of the file. */
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    in = open(link, O_RDONLY | O_CLOEXEC);
    if (in < 0) {
        fprintf(stderr, "powerloss: reopen %s: %s\n", rel, strerror(errno));
        return;
    }
    out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, st->st_mode & 07777);
    if (out < 0) {
        fprintf(stderr, "powerloss: open %s: %s\n", tmp, strerror(errno));
        close(in);
        return;
    }
    /* Data extents only: fjall preallocates its journal as a 64 MiB
     * sparse file, which the image keeps sparse (holes read as zeros). */
    while ((off = lseek(in, off, SEEK_DATA)) >= 0) {
        off_t end = lseek(in, off, SEEK_HOLE);
        if (end < 0) end = st->st_size;
        while (off < end && (n = pread(in, buf, sizeof buf, off)) > 0) {
            if (pwrite(out, buf, (size_t)n, off) != n) {
                fprintf(stderr, "powerloss: write %s: %s\n", tmp, strerror(errno));
                end = off;
                break;
            }
            off += n;
        }
        if (off < end) break;
    }
    if (ftruncate(out, st->st_size) != 0)
        fprintf(stderr, "powerloss: truncate %s: %s\n", tmp, strerror(errno));
    close(in);
    close(out);
    if (rename(tmp, dst) != 0)
        fprintf(stderr, "powerloss: rename %s: %s\n", tmp, strerror(errno));
    track(rel, st);
}

static void remove_tree(const char *path) {
    struct stat st;
    DIR *d;
    struct dirent *e;
    char child[PATH_MAX];
    if (lstat(path, &st) != 0) return;
    if (S_ISDIR(st.st_mode) && (d = opendir(path))) {
        while ((e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            join(child, sizeof child, path, e->d_name);
            remove_tree(child);
        }
        closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

/* Makes the entries of directory rel durable (see the model above). */
static void sync_dir(const char *rel, int deep) {
    char real_dir[PATH_MAX], img_dir[PATH_MAX], a[PATH_MAX], b[PATH_MAX], r[PATH_MAX];
    const char *root = getenv("POWERLOSS_ROOT"), *image = getenv("POWERLOSS_IMAGE");
    DIR *d;
    struct dirent *e;
    struct stat st;
    join(real_dir, sizeof real_dir, root, rel);
    join(img_dir, sizeof img_dir, image, rel);
    mkdirs(img_dir);
    /* Image entries gone from the real directory: renamed (same inode
     * under another name) or removed. */
    if ((d = opendir(img_dir))) {
        while ((e = readdir(d))) {
            struct tracked *t;
            DIR *rd;
            struct dirent *re;
            int moved = 0;
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            join(a, sizeof a, real_dir, e->d_name);
            if (lstat(a, &st) == 0) continue;
            join(r, sizeof r, rel, e->d_name);
            join(b, sizeof b, img_dir, e->d_name);
            t = tracked_by_rel(r);
            if (t && (rd = opendir(real_dir))) {
                while (!moved && (re = readdir(rd))) {
                    char to[PATH_MAX], to_rel[PATH_MAX];
                    join(a, sizeof a, real_dir, re->d_name);
                    if (lstat(a, &st) != 0 || st.st_ino != t->ino || st.st_dev != t->dev)
                        continue;
                    join(to, sizeof to, img_dir, re->d_name);
                    join(to_rel, sizeof to_rel, rel, re->d_name);
                    if (rename(b, to) == 0) {
                        t->rel[0] = 0;
                        track(to_rel, &st);
                        moved = 1;
                    }
                }
                closedir(rd);
            }
            if (!moved) remove_tree(b);
        }
        closedir(d);
    }
    /* Real entries missing from the image: subdirectories appear; a file
     * never synced appears empty (its name is durable, its data is not). */
    if ((d = opendir(real_dir))) {
        while ((e = readdir(d))) {
            size_t n = strlen(e->d_name);
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            if (n >= strlen(TMP_SUFFIX) && !strcmp(e->d_name + n - strlen(TMP_SUFFIX), TMP_SUFFIX))
                continue;
            join(a, sizeof a, real_dir, e->d_name);
            join(b, sizeof b, img_dir, e->d_name);
            join(r, sizeof r, rel, e->d_name);
            if (lstat(a, &st) != 0) continue;
            if (S_ISDIR(st.st_mode)) {
                mkdir(b, 0755);
                if (deep) sync_dir(r, 1);
            } else if (S_ISREG(st.st_mode)) {
                if (deep) {
                    int fd = open(a, O_RDONLY | O_CLOEXEC);
                    if (fd >= 0) {
                        copy_fd(fd, r, &st);
                        close(fd);
                    }
                } else if (access(b, F_OK) != 0) {
                    int fd = open(b, O_WRONLY | O_CREAT | O_CLOEXEC, st.st_mode & 07777);
                    if (fd >= 0) close(fd);
                }
            }
        }
        closedir(d);
    }
}

/* Records what syncing fd makes durable; 1 if the real sync is skipped. */
static int record(int fd, const char *what) {
    char abs[PATH_MAX];
    const char *rel;
    struct stat st;
    int skip = 0;
    if (!getenv("POWERLOSS_ROOT") || !getenv("POWERLOSS_IMAGE")) return 0;
    pthread_mutex_lock(&lock);
    rel = rel_of(fd, abs, sizeof abs);
    if (rel && fstat(fd, &st) == 0) {
        if (under(abs, getenv("POWERLOSS_NOSYNC_UNDER"))) {
            note("skipped", abs);
            skip = 1;
        } else if (S_ISDIR(st.st_mode)) {
            note(what, abs);
            sync_dir(rel, 0);
        } else if (S_ISREG(st.st_mode)) {
            note(what, abs);
            copy_fd(fd, rel, &st);
        }
    }
    pthread_mutex_unlock(&lock);
    return skip;
}

int fsync(int fd) {
    resolve();
    if (record(fd, "fsync")) return 0;
    return real_fsync(fd);
}

int fdatasync(int fd) {
    resolve();
    if (record(fd, "fdatasync")) return 0;
    return real_fdatasync(fd);
}

static void sync_all(const char *what) {
    if (!getenv("POWERLOSS_ROOT") || !getenv("POWERLOSS_IMAGE")) return;
    pthread_mutex_lock(&lock);
    note(what, getenv("POWERLOSS_ROOT"));
    sync_dir("", 1);
    pthread_mutex_unlock(&lock);
}

int syncfs(int fd) {
    resolve();
    sync_all("syncfs");
    return real_syncfs(fd);
}

void sync(void) {
    resolve();
    sync_all("sync");
    real_sync();
}
