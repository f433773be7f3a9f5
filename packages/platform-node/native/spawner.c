/*
 * effect-koyeb-spawner: starts the executor's commands with posix_spawn (glibc's clone(CLONE_VM |
 * CLONE_VFORK)), so that a command costs neither a fork of the large node process that asks for it
 * nor the time that process is blocked in libuv's fork. It may also be a sandbox's only process
 * (its pid 1, under bubblewrap): then it does the file operations of the host process that serves
 * the sandbox, so that paths resolve in the sandbox's mount namespace, never in the host's.
 *
 * Protocol, over this process's stdin (requests) and stdout (replies), little-endian:
 *   request:  u32 length of the rest, u32 op, u32 id, then by op
 *     op 1 spawn:   u32 flags, u32 argc, u32 envc, then NUL-terminated strings: path, cwd,
 *                   argv[argc], env[envc]. Flags: 1 stdin is a pipe (else /dev/null); 2 inherit:
 *                   the fds 3 and 4 this process started with (moved away at start) are the
 *                   command's fds 3 and 4. The command leads a new session (own process group),
 *                   with default signal dispositions and an empty signal mask, as libuv starts a
 *                   detached child.
 *     op 2 release: the fds kept for request `id` are closed (and its child may be reaped).
 *     op 3 path:    u32 subop, u32 flags, u32 mode, then the NUL-terminated path. Subops: 1 open
 *                   (flags | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, mode; the fd is kept under `id`:
 *                   O_NONBLOCK so that a FIFO cannot block this process, a write-open of a FIFO
 *                   without reader fails ENXIO), 2 stat, 3 lstat, 4 mkdir (mode), 5 unlink,
 *                   6 rmdir, 7 remove all (as rm -rf: ENOENT is success, symlinks never followed).
 *   reply: 7 × i32: type, id, a, b, c, d, e
 *     type 1 spawned: a pid (in this process's pid namespace), b/c/d this process's fds of the
 *            stdout and stderr read ends and the stdin write end (-1: none), e a pidfd of the
 *            child (-1: none). The asker opens /proc/<this pid>/fd/<n> to get its own ends (and
 *            reads the child's pid in its own namespace from /proc/<this pid>/fdinfo/<e>), then
 *            sends release; until then the ends stay open here, so that the pipes have a reader
 *            and a writer whatever the command did meanwhile, and the child is not reaped, so
 *            that its pidfd still names a process.
 *     type 2 failed:  a errno
 *     type 3 exited:  a pid, b wait status (every child reaped, orphans too when this is pid 1)
 *     type 4 done:    a errno (0: success), b a value: open: the fd kept here (reopen it through
 *                     /proc, then release); stat, lstat: 1 for a directory, else 0
 * The spawner exits when its stdin closes or its parent dies.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434 /* the same number on every architecture */
#endif

enum { OP_SPAWN = 1, OP_RELEASE = 2, OP_PATH = 3 };
enum { REPLY_SPAWNED = 1, REPLY_FAILED = 2, REPLY_EXITED = 3, REPLY_DONE = 4 };
enum { FLAG_STDIN = 1, FLAG_INHERIT = 2 };
enum { PATH_OPEN = 1, PATH_STAT, PATH_LSTAT, PATH_MKDIR, PATH_UNLINK, PATH_RMDIR, PATH_REMOVE_ALL };

/* What is kept until the release of a request: fds, and a child left unreaped. */
struct kept {
  uint32_t id;
  pid_t pid; /* 0: none */
  int fds[5];
  struct kept *next;
};
static struct kept *kept_list;

/* The fds 3 and 4 this process started with (sockets a sandbox's executor listens on), or -1. */
static int inherited[2] = {-1, -1};

static void reply(int32_t type, uint32_t id, int32_t a, int32_t b, int32_t c, int32_t d, int32_t e) {
  int32_t record[7] = {type, (int32_t)id, a, b, c, d, e};
  const char *p = (const char *)record;
  size_t left = sizeof record;
  while (left > 0) {
    ssize_t n = write(1, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) _exit(0); /* the asker is gone */
    p += n;
    left -= (size_t)n;
  }
}

static void failed(uint32_t id, int error) { reply(REPLY_FAILED, id, error, 0, 0, 0, 0); }

static void close_all(int *fds, int n) {
  for (int i = 0; i < n; i++)
    if (fds[i] >= 0) close(fds[i]);
}

static void keep(uint32_t id, pid_t pid, const int fds[5]) {
  struct kept *k = malloc(sizeof *k);
  if (k == NULL) _exit(1);
  k->id = id;
  k->pid = pid;
  memcpy(k->fds, fds, sizeof k->fds);
  k->next = kept_list;
  kept_list = k;
}

static int held(pid_t pid) {
  for (struct kept *k = kept_list; k != NULL; k = k->next)
    if (k->pid == pid) return 1;
  return 0;
}

/* Reads `count` NUL-terminated strings from [*at, end) into out; 0 when the frame is malformed. */
static int strings(char **at, char *end, char **out, uint32_t count) {
  for (uint32_t i = 0; i < count; i++) {
    char *nul = memchr(*at, '\0', (size_t)(end - *at));
    if (nul == NULL) return 0;
    out[i] = *at;
    *at = nul + 1;
  }
  return 1;
}

static uint32_t u32(const char *p) {
  uint32_t v;
  memcpy(&v, p, sizeof v);
  return v;
}

static void spawn(uint32_t id, char *body, char *end) {
  if (end - body < 12) { failed(id, EINVAL); return; }
  uint32_t flags = u32(body), argc = u32(body + 4), envc = u32(body + 8);
  char *at = body + 12;
  if (argc == 0 || argc > (uint32_t)(end - at) || envc > (uint32_t)(end - at)) { failed(id, EINVAL); return; }
  char *head[2];
  char **argv = calloc((size_t)argc + 1, sizeof *argv);
  char **envp = calloc((size_t)envc + 1, sizeof *envp);
  if (argv == NULL || envp == NULL) {
    free(argv);
    free(envp);
    failed(id, ENOMEM);
    return;
  }
  int ok = strings(&at, end, head, 2) && strings(&at, end, argv, argc) && strings(&at, end, envp, envc);
  /* out[0] out[1] err[0] err[1] in[0] in[1] */
  int p[6] = {-1, -1, -1, -1, -1, -1};
  int error = 0;
  if (!ok) error = EINVAL;
  else if (pipe2(p, O_CLOEXEC) < 0 || pipe2(p + 2, O_CLOEXEC) < 0 || ((flags & FLAG_STDIN) && pipe2(p + 4, O_CLOEXEC) < 0))
    error = errno;
  pid_t pid = -1;
  if (error == 0) {
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attr;
    sigset_t all, none;
    sigfillset(&all);
    sigemptyset(&none);
    posix_spawn_file_actions_init(&actions);
    posix_spawnattr_init(&attr);
    if (flags & FLAG_STDIN) posix_spawn_file_actions_adddup2(&actions, p[4], 0);
    else posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, p[1], 1);
    posix_spawn_file_actions_adddup2(&actions, p[3], 2);
    /* last, since a pipe end above may be numbered 3 or 4 here; dup2 clears FD_CLOEXEC */
    for (int i = 0; i < 2; i++)
      if ((flags & FLAG_INHERIT) && inherited[i] >= 0) posix_spawn_file_actions_adddup2(&actions, inherited[i], 3 + i);
    posix_spawn_file_actions_addchdir_np(&actions, head[1]);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
    error = posix_spawn(&pid, head[0], &actions, &attr, argv, envp);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
  }
  free(argv);
  free(envp);
  if (error != 0) {
    close_all(p, 6);
    failed(id, error);
    return;
  }
  /* The command's ends are its own now; ours stay until released (see the protocol). The stdin
     read end is kept too: a write end can only be opened while the pipe has a reader. */
  close(p[1]);
  close(p[3]);
  int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
  if (pidfd >= 0) fcntl(pidfd, F_SETFD, FD_CLOEXEC);
  keep(id, pid, (int[5]){p[0], p[2], p[4], p[5], pidfd});
  reply(REPLY_SPAWNED, id, pid, p[0], p[2], p[5], pidfd);
}

/* Removes `name` (relative to `dir`) as rm -rf does, never following a symlink; the first errno met, or 0. */
static int remove_all(int dir, const char *name) {
  if (unlinkat(dir, name, 0) == 0 || errno == ENOENT) return 0;
  int error = errno;
  /* Linux answers EISDIR for a directory, POSIX EPERM */
  if (error != EISDIR && error != EPERM) return error;
  int fd = openat(dir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return errno == ENOENT ? 0 : errno == ENOTDIR ? error : errno;
  DIR *d = fdopendir(fd);
  if (d == NULL) {
    error = errno;
    close(fd);
    return error;
  }
  error = 0;
  for (struct dirent *entry; (entry = readdir(d)) != NULL;) {
    if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0) continue;
    int e = remove_all(dirfd(d), entry->d_name);
    if (error == 0) error = e;
  }
  closedir(d);
  if (unlinkat(dir, name, AT_REMOVEDIR) < 0 && errno != ENOENT && error == 0) error = errno;
  return error;
}

static void path_op(uint32_t id, char *body, char *end) {
  if (end - body < 13 || end[-1] != '\0') { reply(REPLY_DONE, id, EINVAL, 0, 0, 0, 0); return; }
  uint32_t subop = u32(body), flags = u32(body + 4), mode = u32(body + 8);
  const char *path = body + 12;
  struct stat st;
  int value = 0, error = 0;
  switch (subop) {
  case PATH_OPEN: {
    int fd = open(path, (int)flags | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, (mode_t)mode);
    if (fd < 0) error = errno;
    else keep(id, 0, (int[5]){fd, -1, -1, -1, -1});
    value = fd;
    break;
  }
  case PATH_STAT:
  case PATH_LSTAT:
    if ((subop == PATH_STAT ? stat(path, &st) : lstat(path, &st)) < 0) error = errno;
    else value = S_ISDIR(st.st_mode);
    break;
  case PATH_MKDIR: error = mkdir(path, (mode_t)mode) < 0 ? errno : 0; break;
  case PATH_UNLINK: error = unlink(path) < 0 ? errno : 0; break;
  case PATH_RMDIR: error = rmdir(path) < 0 ? errno : 0; break;
  case PATH_REMOVE_ALL: error = remove_all(AT_FDCWD, path); break;
  default: error = EINVAL;
  }
  reply(REPLY_DONE, id, error, value, 0, 0, 0);
}

/* Reaps every exited child but the ones held until their release (they are found first, in the
   kernel's order: the rest waits for the next release, which reaps again). */
static void reap(void) {
  for (;;) {
    siginfo_t info;
    info.si_pid = 0;
    if (waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) < 0 || info.si_pid == 0) return;
    if (held(info.si_pid)) return;
    int status;
    if (waitpid(info.si_pid, &status, WNOHANG) <= 0) return;
    reply(REPLY_EXITED, 0, info.si_pid, status, 0, 0, 0);
  }
}

static void release(uint32_t id) {
  struct kept **at = &kept_list;
  while (*at != NULL) {
    struct kept *k = *at;
    if (k->id == id) {
      close_all(k->fds, 5);
      *at = k->next;
      int child = k->pid != 0;
      free(k);
      if (child) reap();
    } else {
      at = &k->next;
    }
  }
}

int main(void) {
  /* PID 1 may be our parent (a PID namespace's init): only a change of parent means it died */
  pid_t parent = getppid();
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) return 0;
  signal(SIGPIPE, SIG_IGN);
  /* out of the way of the fds the commands get, and of our own */
  for (int i = 0; i < 2; i++) {
    if (fcntl(3 + i, F_GETFD) < 0) continue;
    inherited[i] = fcntl(3 + i, F_DUPFD_CLOEXEC, 100);
    close(3 + i);
  }
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  sigprocmask(SIG_BLOCK, &chld, NULL);
  int sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sfd < 0) return 1;
  fcntl(0, F_SETFD, FD_CLOEXEC);
  fcntl(1, F_SETFD, FD_CLOEXEC);

  size_t cap = 1 << 16, len = 0;
  char *buf = malloc(cap);
  if (buf == NULL) return 1;
  struct pollfd fds[2] = {{.fd = 0, .events = POLLIN}, {.fd = sfd, .events = POLLIN}};
  for (;;) {
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return 1;
    }
    if (fds[1].revents & POLLIN) {
      struct signalfd_siginfo info;
      while (read(sfd, &info, sizeof info) > 0) {
      }
      reap();
    }
    if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      if (len == cap) {
        cap *= 2;
        char *grown = realloc(buf, cap);
        if (grown == NULL) return 1;
        buf = grown;
      }
      ssize_t n = read(0, buf + len, cap - len);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return 0;
      len += (size_t)n;
      size_t at = 0;
      while (len - at >= 4) {
        uint32_t size = u32(buf + at);
        if (size < 8) return 1;
        if (len - at - 4 < size) {
          /* a frame larger than the buffer grows it on the next reads */
          while (cap < (size_t)size + 4) cap *= 2;
          char *grown = realloc(buf, cap);
          if (grown == NULL) return 1;
          buf = grown;
          break;
        }
        char *frame = buf + at + 4;
        uint32_t op = u32(frame), id = u32(frame + 4);
        if (op == OP_SPAWN) spawn(id, frame + 8, frame + size);
        else if (op == OP_RELEASE) release(id);
        else if (op == OP_PATH) path_op(id, frame + 8, frame + size);
        at += 4 + (size_t)size;
      }
      memmove(buf, buf + at, len - at);
      len -= at;
    }
  }
}
