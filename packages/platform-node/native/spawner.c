/*
 * effect-koyeb-spawner: starts the executor's commands with posix_spawn (glibc's clone(CLONE_VM |
 * CLONE_VFORK)), so that a command costs neither a fork of the large node process that asks for it
 * nor the time that process is blocked in libuv's fork.
 *
 * Protocol, over this process's stdin (requests) and stdout (replies), little-endian:
 *   request:  u32 length of the rest, u32 op, u32 id, then by op
 *     op 1 spawn:   u32 flags (1: stdin is a pipe, else /dev/null), u32 argc, u32 envc, then
 *                   NUL-terminated strings: path, cwd, argv[argc], env[envc]. The command leads a
 *                   new session (own process group), with default signal dispositions and an empty
 *                   signal mask, as libuv starts a detached child.
 *     op 2 release: the pipe ends kept for request `id` are closed.
 *   reply: 6 × i32: type, id, a, b, c, d
 *     type 1 spawned: a pid, b/c/d this process's fds of the stdout and stderr read ends and the
 *            stdin write end (-1: none). The asker opens /proc/<this pid>/fd/<n> to get its own
 *            ends, then sends release; until then the ends stay open here, so that the pipes have
 *            a reader and a writer whatever the command did meanwhile.
 *     type 2 failed:  a errno
 *     type 3 exited:  a pid, b wait status (every child reaped, in the order reaped)
 * The spawner exits when its stdin closes or its parent dies.
 */
#define _GNU_SOURCE
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
#include <sys/wait.h>
#include <unistd.h>

enum { OP_SPAWN = 1, OP_RELEASE = 2 };
enum { REPLY_SPAWNED = 1, REPLY_FAILED = 2, REPLY_EXITED = 3 };
enum { FLAG_STDIN = 1 };

/* The ends kept until their release, by request id. */
struct kept {
  uint32_t id;
  int fds[3];
  struct kept *next;
};
static struct kept *kept_list;

static void reply(int32_t type, uint32_t id, int32_t a, int32_t b, int32_t c, int32_t d) {
  int32_t record[6] = {type, (int32_t)id, a, b, c, d};
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

static void close_all(int *fds, int n) {
  for (int i = 0; i < n; i++)
    if (fds[i] >= 0) close(fds[i]);
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
  if (end - body < 12) { reply(REPLY_FAILED, id, EINVAL, 0, 0, 0); return; }
  uint32_t flags = u32(body), argc = u32(body + 4), envc = u32(body + 8);
  char *at = body + 12;
  if (argc == 0 || argc > (uint32_t)(end - at) || envc > (uint32_t)(end - at))
    { reply(REPLY_FAILED, id, EINVAL, 0, 0, 0); return; }
  char *head[2];
  char **argv = calloc((size_t)argc + 1, sizeof *argv);
  char **envp = calloc((size_t)envc + 1, sizeof *envp);
  if (argv == NULL || envp == NULL) {
    free(argv);
    free(envp);
    { reply(REPLY_FAILED, id, ENOMEM, 0, 0, 0); return; }
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
    { reply(REPLY_FAILED, id, error, 0, 0, 0); return; }
  }
  /* The command's ends are its own now; ours stay until released (see the protocol). */
  close(p[1]);
  close(p[3]);
  struct kept *k = malloc(sizeof *k);
  if (k == NULL) _exit(1);
  k->id = id;
  k->fds[0] = p[0];
  k->fds[1] = p[2];
  k->fds[2] = p[5];
  /* the stdin read end is kept too: a write end can only be opened while the pipe has a reader */
  k->next = NULL;
  if (p[4] >= 0) {
    struct kept *r = malloc(sizeof *r);
    if (r == NULL) _exit(1);
    r->id = id;
    r->fds[0] = p[4];
    r->fds[1] = -1;
    r->fds[2] = -1;
    r->next = kept_list;
    kept_list = r;
  }
  k->next = kept_list;
  kept_list = k;
  reply(REPLY_SPAWNED, id, pid, p[0], p[2], p[5]);
}

static void release(uint32_t id) {
  struct kept **at = &kept_list;
  while (*at != NULL) {
    struct kept *k = *at;
    if (k->id == id) {
      close_all(k->fds, 3);
      *at = k->next;
      free(k);
    } else {
      at = &k->next;
    }
  }
}

static void reap(void) {
  for (;;) {
    int status;
    pid_t pid = waitpid(-1, &status, WNOHANG);
    if (pid <= 0) return;
    reply(REPLY_EXITED, 0, pid, status, 0, 0);
  }
}

int main(void) {
  /* PID 1 may be our parent (a PID namespace's init): only a change of parent means it died */
  pid_t parent = getppid();
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) return 0;
  signal(SIGPIPE, SIG_IGN);
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
        at += 4 + (size_t)size;
      }
      memmove(buf, buf + at, len - at);
      len -= at;
    }
  }
}
