/* Two threads scanning on one engine against one thread: how an embedder's request threads
 * share shenhe. Each round scans every post once per thread with shenhe_scan_json (the
 * decision JSON made and freed, as a back end does); one thread and two threads alternate
 * for REPEATS rounds, and the best of each is printed with the ratio of their throughputs
 * (2.00 would be two threads doing twice the work in the time one does it once).
 *
 * Build: cc -O2 -Iinclude examples/c/threads.c target/release/libshenhe.a -lpthread -ldl -lm
 * Run:   ./a.out POSTS.jsonl [PASSES] [REPEATS] [RULES_PATH]   (bundled rules without a path)
 *        scripts/bench-c-threads.sh makes 3,000-char posts and runs it.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "shenhe.h"

static shenhe_engine *engine;
static char **posts;
static size_t *lens;
static size_t count;
static int passes;

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Scans every post `passes` times, starting at a different post per thread. Returns NULL,
 * or the post that was not decided (its index + 1, as a pointer). */
static void *scan_all(void *arg) {
  size_t offset = (size_t)arg;
  for (int p = 0; p < passes; p++) {
    for (size_t i = 0; i < count; i++) {
      size_t k = (i + offset) % count;
      char *decision = NULL;
      if (shenhe_scan_json(engine, (const uint8_t *)posts[k], lens[k], &decision) != SHENHE_OK)
        return (void *)(k + 1);
      shenhe_string_free(decision);
    }
  }
  return NULL;
}

static void check(void *failed) {
  if (failed) {
    fprintf(stderr, "threads: post %zu (counting non-empty lines) was not decided\n",
            (size_t)failed);
    exit(1);
  }
}

static double one_thread(void) {
  double t0 = now();
  check(scan_all((void *)0));
  return now() - t0;
}

static double two_threads(void) {
  pthread_t a, b;
  double t0 = now();
  if (pthread_create(&a, NULL, scan_all, (void *)0) != 0 ||
      pthread_create(&b, NULL, scan_all, (void *)(count / 2)) != 0) {
    fprintf(stderr, "threads: cannot start a thread\n");
    exit(1);
  }
  void *failed_a, *failed_b;
  pthread_join(a, &failed_a);
  pthread_join(b, &failed_b);
  double t = now() - t0;
  check(failed_a);
  check(failed_b);
  return t;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s POSTS.jsonl [PASSES] [REPEATS] [RULES_PATH]\n", argv[0]);
    return 2;
  }
  passes = argc > 2 ? atoi(argv[2]) : 10;
  int repeats = argc > 3 ? atoi(argv[3]) : 5;
  if (passes < 1 || repeats < 1) {
    fprintf(stderr, "threads: PASSES and REPEATS must be at least 1\n");
    return 2;
  }
  shenhe_status s = argc > 4 ? shenhe_engine_new_from_path(argv[4], &engine)
                             : shenhe_engine_new_bundled(&engine);
  if (s != SHENHE_OK) {
    char msg[512];
    size_t n;
    shenhe_last_error(msg, sizeof msg, &n);
    fprintf(stderr, "threads: no engine: %s\n", msg);
    return 1;
  }
  FILE *f = fopen(argv[1], "rb");
  if (!f) {
    perror(argv[1]);
    return 1;
  }
  size_t cap = 0;
  char *line = NULL;
  ssize_t n;
  while ((n = getline(&line, &cap, f)) > 0) {
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = 0;
    if (n == 0) continue;
    char **more_posts = realloc(posts, (count + 1) * sizeof *posts);
    size_t *more_lens = realloc(lens, (count + 1) * sizeof *lens);
    char *copy = malloc((size_t)n + 1);
    if (!more_posts || !more_lens || !copy) {
      fprintf(stderr, "threads: out of memory\n");
      return 1;
    }
    posts = more_posts;
    lens = more_lens;
    memcpy(copy, line, (size_t)n + 1); /* the bytes as read, a NUL inside included */
    posts[count] = copy;
    lens[count] = (size_t)n;
    count++;
  }
  fclose(f);
  free(line);
  if (count == 0) {
    fprintf(stderr, "threads: no posts in %s\n", argv[1]);
    return 1;
  }
  one_thread(); /* warm-up: tables built on first use, the dictionary loaded */
  double best_one = 1e9, best_two = 1e9;
  for (int r = 0; r < repeats; r++) {
    double t1 = one_thread(), t2 = two_threads();
    if (t1 < best_one) best_one = t1;
    if (t2 < best_two) best_two = t2;
  }
  printf("%zu posts x %d passes: one thread %.3f s, two threads (twice the posts) %.3f s: %.2fx\n",
         count, passes, best_one, best_two, 2 * best_one / best_two);
  shenhe_engine_free(engine);
  return 0;
}
