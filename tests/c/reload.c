/* Four threads (three through the engine, one through a moderator over it) scan while the main thread reloads the rules N times (default 1000): every
 * decision carries the hash of one whole rule set (A's or B's, never a mix) and finds
 * exactly the term that rule set has; a reload that fails keeps the old rules.
 * Usage: reload A.toml B.toml [N] */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "shenhe.h"

static shenhe_engine *engine;
static shenhe_moderator *moderator;
static volatile int stop;
static int failures, scans;
static char hash_a[65], hash_b[65];

/* A scanner calls the engine, or the moderator (which sees the same reloads) when `arg` is set. */
static void *scanner(void *arg) {
  const char *post = "{\"text\":\"甲甲乙乙\"}";
  while (!stop) {
    char *d = NULL;
    shenhe_status s = arg ? shenhe_moderate_json(moderator, (const uint8_t *)post, strlen(post), &d)
                          : shenhe_scan_json(engine, (const uint8_t *)post, strlen(post), &d);
    if (s != SHENHE_OK) {
      __sync_fetch_and_add(&failures, 1);
      continue;
    }
    int is_a = strstr(d, hash_a) != NULL, is_b = strstr(d, hash_b) != NULL;
    int hit_a = strstr(d, "\"rule\":\"a\"") != NULL, hit_b = strstr(d, "\"rule\":\"b\"") != NULL;
    if (!((is_a && hit_a && !hit_b) || (is_b && hit_b && !hit_a))) __sync_fetch_and_add(&failures, 1);
    __sync_fetch_and_add(&scans, 1);
    shenhe_string_free(d);
  }
  return NULL;
}

static int hash_of(const char *path, char *out) {
  shenhe_engine *e = NULL;
  size_t n;
  if (shenhe_engine_new_from_path(path, &e) != SHENHE_OK) return 0;
  int ok = shenhe_engine_ruleset_hash(e, out, 65, &n) == SHENHE_OK;
  shenhe_engine_free(e);
  return ok;
}

int main(int argc, char **argv) {
  if (argc < 3) return 2;
  int n = argc > 3 ? atoi(argv[3]) : 1000;
  if (!hash_of(argv[1], hash_a) || !hash_of(argv[2], hash_b)) return 3;
  if (shenhe_engine_new_from_path(argv[1], &engine) != SHENHE_OK) return 3;
  if (shenhe_moderator_new(engine, NULL, NULL, &moderator) != SHENHE_OK) return 3;
  pthread_t threads[4];
  for (int i = 0; i < 4; i++) pthread_create(&threads[i], NULL, scanner, i == 3 ? (void *)1 : NULL);
  for (int i = 0; i < n; i++) {
    if (shenhe_engine_reload_from_path(engine, argv[1 + (i % 2)]) != SHENHE_OK) return 4;
  }
  if (shenhe_engine_reload_from_path(engine, argv[2]) != SHENHE_OK) return 4;
  printf("reload ok: %d reloads\n", n + 1);
  if (shenhe_engine_reload_from_path(engine, "/nonexistent.toml") != SHENHE_RULES_ERROR) return 5;
  stop = 1;
  for (int i = 0; i < 4; i++) pthread_join(threads[i], NULL);
  size_t hits = 0;
  shenhe_action action;
  bool report;
  const char *b = "乙乙";
  shenhe_scan_text(engine, (const uint8_t *)b, strlen(b), &action, &report, &hits, NULL);
  if (hits == 1) printf("bad reload kept the old rules\n");
  printf("scans during reloads: %s; decisions with a mixed or wrong rule set: %d\n", scans > 0 ? "some" : "none", failures);
  shenhe_moderator_free(moderator);
  shenhe_engine_free(engine);
  return failures == 0 && scans > 0 ? 0 : 6;
}
