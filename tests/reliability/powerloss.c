/*
 * powerloss.c: an LD_PRELOAD shim that keeps a "durable image" of a data
 * directory, so a test can simulate a power loss by replacing the data
 * directory with the image after kill -9 (the page cache, which survives a
 * plain kill -9, is what a power loss throws away).
 *
 * Model (POSIX, strict for file names and contents; see RELIABILITY.md):
 *   - A file's content is durable as of its last fsync/fdatasync; writes
 *     after it are lost. A synced file whose name is not yet durable keeps
 *     its content in a side area ("<image>.pending/<dev>-<inode>-<birth>"),
 *     which outlives the process, as the inode does.
 *   - A directory's entries are durable as of its last fsync: then names
 *     gone from the real directory leave the image (unlink, rename away),
 *     and new names appear with the synced content of their inode (rename
 *     in: from the side area or from the image name it had), or empty if
 *     that inode was never synced (name durable, data not).
 *   - Exception: a new subdirectory appears (empty) as soon as it or its
 *     parent is synced, as on journaling file systems, where the fsync of
 *     a new directory commits its creation in the parent.
 *   - syncfs/sync make the whole root durable.
 *   - rename/unlink are not intercepted: fjall renames through rustix (raw
 *     syscalls, no libc symbol); the directory fsync, which goes through
 *     libc, is where their effect becomes durable, and there the shim
 *     compares names and inodes.
 *   - POWERLOSS_NOSYNC_UNDER=<path>: fsync/fdatasync of anything under that
 *     path return 0 without syncing or updating the image ("sync off").
 *   - POWERLOSS_NODIRSYNC=1: fsync of directories returns 0 without
 *     syncing or making entries durable ("directory sync off").
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
    unsigned long long born;
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

static void track(const char *rel, const struct stat *st, unsigned long long born) {
    unsigned i;
    if (strlen(rel) >= sizeof tracked[0].rel) return;
    for (i = 0; i < MAX_TRACKED; i++)
        if (strcmp(tracked[i].rel, rel) == 0) break;
    if (i == MAX_TRACKED) i = next_tracked++ % MAX_TRACKED;
    tracked[i].dev = st->st_dev;
    tracked[i].ino = st->st_ino;
    tracked[i].born = born;
    snprintf(tracked[i].rel, sizeof tracked[i].rel, "%s", rel);
}

static struct tracked *tracked_by_rel(const char *rel) {
    unsigned i;
    for (i = 0; i < MAX_TRACKED; i++)
        if (tracked[i].rel[0] && strcmp(tracked[i].rel, rel) == 0) return &tracked[i];
    return NULL;
}

/* Copies the content of the file open as fd to dst, atomically. */
static void copy_fd(int fd, const char *dst, const struct stat *st) {
    char tmp[PATH_MAX], dir[PATH_MAX], buf[65536];
    char *slash, link[64];
    int in, out;
    off_t off = 0;
    ssize_t n;
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
        fprintf(stderr, "powerloss: reopen %s: %s\n", dst, strerror(errno));
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
}

/* The birth time of path (of fd if path is ""), 0 where unknown: with
 * the inode number it names a file even when inode numbers are reused. */
static unsigned long long birth(int fd, const char *path) {
    struct statx sx;
    int flags = *path ? AT_SYMLINK_NOFOLLOW : AT_EMPTY_PATH;
    if (statx(*path ? AT_FDCWD : fd, path, flags, STATX_BTIME, &sx) != 0 ||
        !(sx.stx_mask & STATX_BTIME))
        return 0;
    return (unsigned long long)sx.stx_btime.tv_sec * 1000000000ULL + sx.stx_btime.tv_nsec;
}

/* The side area's path for the synced content of a file (inode and birth
 * time). The side area outlives the process: a synced inode keeps its
 * content until a directory fsync gives it a durable name. */
static void pending_path(char *out, size_t len, const struct stat *st, unsigned long long born) {
    snprintf(out, len, "%s.pending/%lu-%lu-%llu", getenv("POWERLOSS_IMAGE"),
             (unsigned long)st->st_dev, (unsigned long)st->st_ino, born);
}

/* fsync of a regular file: its content becomes durable under its name if
 * that name is durable and still names this inode, else in the side area. */
static void sync_file(int fd, const char *rel, const struct stat *st) {
    char dst[PATH_MAX];
    struct tracked *t = tracked_by_rel(rel);
    join(dst, sizeof dst, getenv("POWERLOSS_IMAGE"), rel);
    if (access(dst, F_OK) == 0 && (!t || (t->ino == st->st_ino && t->dev == st->st_dev))) {
        copy_fd(fd, dst, st);
        track(rel, st, birth(fd, ""));
    } else {
        pending_path(dst, sizeof dst, st, birth(fd, ""));
        copy_fd(fd, dst, st);
    }
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

static int is_tmp(const char *name) {
    size_t n = strlen(name), k = strlen(TMP_SUFFIX);
    return n >= k && !strcmp(name + n - k, TMP_SUFFIX);
}

/* Makes the entries of directory rel durable (see the model above);
 * deep: also every file's content and every subdirectory (syncfs). */
static void sync_dir(const char *rel, int deep) {
    char real_dir[PATH_MAX], img_dir[PATH_MAX], a[PATH_MAX], b[PATH_MAX], r[PATH_MAX];
    const char *root = getenv("POWERLOSS_ROOT"), *image = getenv("POWERLOSS_IMAGE");
    DIR *d;
    struct dirent *e;
    struct stat st;
    join(real_dir, sizeof real_dir, root, rel);
    join(img_dir, sizeof img_dir, image, rel);
    mkdirs(img_dir);
    /* Image names that no longer name the same inode: their synced content
     * goes to the side area (the inode may have a new name), the name goes. */
    if ((d = opendir(img_dir))) {
        while ((e = readdir(d))) {
            struct tracked *t;
            struct stat img;
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") || is_tmp(e->d_name))
                continue;
            join(a, sizeof a, real_dir, e->d_name);
            join(b, sizeof b, img_dir, e->d_name);
            join(r, sizeof r, rel, e->d_name);
            t = tracked_by_rel(r);
            if (lstat(b, &img) != 0) continue;
            if (lstat(a, &st) == 0) {
                if (S_ISDIR(img.st_mode) == S_ISDIR(st.st_mode) &&
                    (S_ISDIR(st.st_mode) || !t || (t->ino == st.st_ino && t->dev == st.st_dev)))
                    continue;
            }
            if (S_ISREG(img.st_mode) && t) {
                struct stat old = {0};
                char side[PATH_MAX];
                old.st_dev = t->dev;
                old.st_ino = t->ino;
                pending_path(side, sizeof side, &old, t->born);
                rename(b, side);
            } else {
                remove_tree(b);
            }
            if (t) t->rel[0] = 0;
        }
        closedir(d);
    }
    /* Real names missing from the image: a subdirectory appears; a file
     * appears with its inode's synced content, or empty. */
    if ((d = opendir(real_dir))) {
        while ((e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") || is_tmp(e->d_name))
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
                        copy_fd(fd, b, &st);
                        track(r, &st, birth(fd, ""));
                        close(fd);
                    }
                } else if (access(b, F_OK) != 0) {
                    char side[PATH_MAX];
                    unsigned long long born = birth(-1, a);
                    pending_path(side, sizeof side, &st, born);
                    if (rename(side, b) != 0) {
                        int fd = open(b, O_WRONLY | O_CREAT | O_CLOEXEC, st.st_mode & 07777);
                        if (fd >= 0) close(fd);
                    }
                    track(r, &st, born);
                }
            }
        }
        closedir(d);
    }
}

/* At load: the image's files are the data dir's files of the same names
 * (the test made the data dir from the image, or kept both in step). */
static void track_tree(const char *rel) {
    char img_dir[PATH_MAX], a[PATH_MAX], r[PATH_MAX];
    DIR *d;
    struct dirent *e;
    struct stat st;
    join(img_dir, sizeof img_dir, getenv("POWERLOSS_IMAGE"), rel);
    if (!(d = opendir(img_dir))) return;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        join(r, sizeof r, rel, e->d_name);
        join(a, sizeof a, getenv("POWERLOSS_ROOT"), r);
        if (lstat(a, &st) != 0) continue;
        if (S_ISDIR(st.st_mode))
            track_tree(r);
        else if (S_ISREG(st.st_mode))
            track(r, &st, birth(-1, a));
    }
    closedir(d);
}

__attribute__((constructor)) static void init(void) {
    char side[PATH_MAX];
    if (!getenv("POWERLOSS_ROOT") || !getenv("POWERLOSS_IMAGE")) return;
    snprintf(side, sizeof side, "%s.pending", getenv("POWERLOSS_IMAGE"));
    mkdir(side, 0755);
    track_tree("");
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
        if (under(abs, getenv("POWERLOSS_NOSYNC_UNDER")) ||
            (S_ISDIR(st.st_mode) && getenv("POWERLOSS_NODIRSYNC"))) {
            note("skipped", abs);
            skip = 1;
        } else if (S_ISDIR(st.st_mode)) {
            note(what, abs);
            sync_dir(rel, 0);
        } else if (S_ISREG(st.st_mode)) {
            note(what, abs);
            sync_file(fd, rel, &st);
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
