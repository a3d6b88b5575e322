/*
 * durable-echo: the C ceiling for a durable tick service on this bus and this disk.
 *
 * The bench's other C service, `dbus-test-tool echo`, persists nothing. This one does what our
 * daemon does for NextTick, with nothing around it: single-threaded libdbus, every method call
 * read in one pass over the socket joins one batch (group commit), the batch's last tick is
 * written to the tick file exactly as src/engine/tick-file.ts writes it in steady state (open
 * O_RDWR|O_NOFOLLOW|O_NOATIME, a one-byte pread past the value, pwrite at offset 0,
 * fdatasync, close), and only then is each call answered with its tick (one `t`). No tick
 * is answered before its fdatasync returned. It is a measuring stick for bench/bench.mjs,
 * not a product: no error recovery beyond exiting, no introspection, no policy.
 *
 * With --pipeline the flush moves to a second thread that starts the next flush the moment the
 * previous one returns, covering every call read meanwhile (the main thread keeps reading and
 * answering): the best a two-thread design can do with one flush at a time.
 *
 * With --direct each flush is one O_DIRECT|O_DSYNC write of a whole 512-byte sector (the number
 * padded with spaces): what a different file format would buy.
 *
 * Usage: durable-echo --address=ADDR --name=NAME --tick-file=PATH [--pipeline] [--direct]
 */
#define _GNU_SOURCE
#include <dbus/dbus.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <unistd.h>

static void die(const char *what, const char *detail) {
  fprintf(stderr, "durable-echo: %s: %s\n", what, detail ? detail : strerror(errno));
  exit(1);
}

static int has_flag(int argc, char **argv, const char *flag) {
  for (int i = 1; i < argc; i++)
    if (strcmp(argv[i], flag) == 0) return 1;
  return 0;
}

static const char *arg(int argc, char **argv, const char *key) {
  size_t n = strlen(key);
  for (int i = 1; i < argc; i++)
    if (strncmp(argv[i], key, n) == 0 && argv[i][n] == '=') return argv[i] + n + 1;
  fprintf(stderr, "usage: durable-echo --address=ADDR --name=NAME --tick-file=PATH (missing %s)\n", key);
  exit(2);
}

static int open_flags = O_RDWR | O_NOFOLLOW | O_NOATIME | O_CLOEXEC;
static int direct; /* --direct: O_DIRECT|O_DSYNC, one 512-byte sector (not tick.dat's format) */

static void write_tick_direct(const char *file, uint64_t value) {
  static char *sector;
  if (!sector && posix_memalign((void **)&sector, 4096, 512) != 0) die("posix_memalign", NULL);
  memset(sector, ' ', 512);
  int len = snprintf(sector, 32, "%" PRIu64, value);
  sector[len] = ' ';
  sector[511] = '\n';
  int fd = open(file, O_RDWR | O_NOFOLLOW | O_CLOEXEC | O_DIRECT | O_DSYNC);
  if (fd < 0) die("open O_DIRECT", NULL);
  if (pwrite(fd, sector, 512, 0) != 512) die("pwrite O_DIRECT", NULL);
  if (close(fd) != 0) die("close", NULL);
}

/* One durable write of `value`, as the daemon's steady state does it. */
static void write_tick(const char *file, uint64_t value) {
  if (direct) {
    write_tick_direct(file, value);
    return;
  }
  char buf[32], probe;
  int len = snprintf(buf, sizeof buf, "%" PRIu64 "\n", value);
  int fd = open(file, open_flags);
  if (fd < 0 && errno == EPERM && (open_flags & O_NOATIME)) {
    open_flags &= ~O_NOATIME;
    fd = open(file, open_flags);
  }
  if (fd < 0) die("open", NULL);
  if (pread(fd, &probe, 1, len) != 0) die("tick file longer than its value", "refusing an in-place write");
  if (pwrite(fd, buf, len, 0) != len) die("pwrite", NULL);
  if (fdatasync(fd) != 0) die("fdatasync", NULL);
  if (close(fd) != 0) die("close", NULL);
}

/* --pipeline: the flusher thread and what it shares with the main thread. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static uint64_t requested, flushed; /* under mu */
static int done_fd;                 /* eventfd: the flusher tells the main thread */
static const char *tick_path;

static void *flusher(void *unused) {
  (void)unused;
  pthread_mutex_lock(&mu);
  for (;;) {
    while (requested == flushed) pthread_cond_wait(&cv, &mu);
    uint64_t v = requested;
    pthread_mutex_unlock(&mu);
    write_tick(tick_path, v);
    pthread_mutex_lock(&mu);
    flushed = v;
    uint64_t one = 1;
    if (write(done_fd, &one, sizeof one) != sizeof one) die("eventfd", NULL);
  }
  return NULL;
}

typedef struct {
  DBusMessage *m;
  uint64_t tick;
} Waiting;

/* Answers `call` with its tick (unless it asked for no reply) and lets go of it. */
static void answer(DBusConnection *c, DBusMessage *call, uint64_t t) {
  if (!dbus_message_get_no_reply(call)) {
    dbus_uint64_t v = t;
    DBusMessage *r = dbus_message_new_method_return(call);
    if (!r || !dbus_message_append_args(r, DBUS_TYPE_UINT64, &v, DBUS_TYPE_INVALID) || !dbus_connection_send(c, r, NULL))
      die("reply", "out of memory");
    dbus_message_unref(r);
  }
  dbus_message_unref(call);
}

static void run_pipeline(DBusConnection *c, uint64_t tick) {
  int sock;
  if (!dbus_connection_get_unix_fd(c, &sock)) die("socket", "no unix fd");
  done_fd = eventfd(0, EFD_CLOEXEC);
  if (done_fd < 0) die("eventfd", NULL);
  requested = flushed = tick;
  pthread_t th;
  if (pthread_create(&th, NULL, flusher, NULL) != 0) die("pthread_create", NULL);
  size_t cap = 1024, head = 0, tail = 0; /* ring of calls waiting for their flush, tick order */
  Waiting *q = malloc(cap * sizeof *q);
  if (!q) die("malloc", NULL);
  for (;;) {
    struct pollfd p[2] = {{sock, POLLIN, 0}, {done_fd, POLLIN, 0}};
    if (poll(p, 2, -1) < 0 && errno != EINTR) die("poll", NULL);
    if (p[1].revents & POLLIN) {
      uint64_t cnt;
      if (read(done_fd, &cnt, sizeof cnt) != sizeof cnt) die("eventfd read", NULL);
      pthread_mutex_lock(&mu);
      uint64_t durable = flushed;
      pthread_mutex_unlock(&mu);
      while (head != tail && q[head].tick <= durable) {
        answer(c, q[head].m, q[head].tick);
        head = (head + 1) % cap;
      }
      dbus_connection_flush(c);
    }
    if (!dbus_connection_read_write(c, 0)) break;
    DBusMessage *m;
    int added = 0;
    while ((m = dbus_connection_pop_message(c)) != NULL) {
      if (dbus_message_get_type(m) != DBUS_MESSAGE_TYPE_METHOD_CALL) {
        dbus_message_unref(m);
        continue;
      }
      if ((tail + 1) % cap == head) die("queue", "more than 1023 calls waiting");
      q[tail].m = m;
      q[tail].tick = ++tick;
      tail = (tail + 1) % cap;
      added = 1;
    }
    if (added) {
      pthread_mutex_lock(&mu);
      requested = tick;
      pthread_cond_signal(&cv);
      pthread_mutex_unlock(&mu);
    }
  }
  fprintf(stderr, "durable-echo: disconnected at tick %" PRIu64 "\n", tick);
  exit(0);
}

int main(int argc, char **argv) {
  const char *address = arg(argc, argv, "--address");
  const char *name = arg(argc, argv, "--name");
  const char *file = arg(argc, argv, "--tick-file");
  tick_path = file;
  direct = has_flag(argc, argv, "--direct");
  signal(SIGPIPE, SIG_IGN);

  /* Start from an existing file's value, or create it holding 0 (durably). */
  uint64_t tick = 0;
  FILE *f = fopen(file, "r");
  if (f) {
    if (fscanf(f, "%" SCNu64, &tick) != 1) die("tick file", "not a number");
    fclose(f);
  } else {
    int fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, "0\n", 2) != 2 || fdatasync(fd) != 0 || close(fd) != 0) die("create tick file", NULL);
  }

  DBusError err;
  dbus_error_init(&err);
  DBusConnection *c = dbus_connection_open_private(address, &err);
  if (!c) die("connect", err.message);
  if (!dbus_bus_register(c, &err)) die("Hello", err.message);
  if (dbus_bus_request_name(c, name, DBUS_NAME_FLAG_DO_NOT_QUEUE, &err) != DBUS_REQUEST_NAME_REPLY_PRIMARY_OWNER)
    die("RequestName", dbus_error_is_set(&err) ? err.message : "not the primary owner");

  fprintf(stderr, "durable-echo: serving %s from tick %" PRIu64 "\n", name, tick);
  if (has_flag(argc, argv, "--pipeline")) run_pipeline(c, tick);

  size_t cap = 256, n;
  DBusMessage **batch = malloc(cap * sizeof *batch);
  if (!batch) die("malloc", NULL);

  for (;;) {
    /* Block until the socket is readable, then take everything it holds (non-blocking passes
       until one adds no message): the batch is one pass over what has arrived. */
    if (!dbus_connection_read_write(c, -1)) break;
    n = 0;
    for (;;) {
      size_t before = n;
      DBusMessage *m;
      while ((m = dbus_connection_pop_message(c)) != NULL) {
        if (dbus_message_get_type(m) != DBUS_MESSAGE_TYPE_METHOD_CALL) {
          dbus_message_unref(m);
          continue;
        }
        if (n == cap) {
          cap *= 2;
          batch = realloc(batch, cap * sizeof *batch);
          if (!batch) die("realloc", NULL);
        }
        batch[n++] = m;
      }
      if (n == before || !dbus_connection_read_write(c, 0)) break;
    }
    if (n == 0) continue;
    uint64_t base = tick;
    tick += n;
    write_tick(file, tick);
    for (size_t i = 0; i < n; i++) answer(c, batch[i], base + i + 1);
    dbus_connection_flush(c);
  }
  fprintf(stderr, "durable-echo: disconnected at tick %" PRIu64 "\n", tick);
  return 0;
}
