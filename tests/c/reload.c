/* Threads scan while the main thread reloads the rules: every scan sees one whole rule
 * set, and a reload that fails keeps the old rules. Usage: reload A.toml B.toml */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include "shenhe.h"

static shenhe_engine *engine;
static volatile int stop;
static int failures;

static void *scanner(void *arg) {
  (void)arg;
  const char *text = "甲甲乙乙";
  while (!stop) {
    shenhe_action action;
    bool report;
    size_t hits;
    if (shenhe_scan_text(engine, (const uint8_t *)text, strlen(text), &action, &report, &hits) != SHENHE_OK ||
        hits != 1) {
      __sync_fetch_and_add(&failures, 1); /* one rule set has exactly one of the two terms */
    }
  }
  return NULL;
}

int main(int argc, char **argv) {
  if (argc != 3) return 2;
  if (shenhe_engine_new_from_path(argv[1], &engine) != SHENHE_OK) return 3;
  pthread_t threads[4];
  for (int i = 0; i < 4; i++) pthread_create(&threads[i], NULL, scanner, NULL);
  for (int i = 0; i < 20; i++) {
    if (shenhe_engine_reload_from_path(engine, argv[1 + (i % 2)]) != SHENHE_OK) return 4;
  }
  if (shenhe_engine_reload_from_path(engine, argv[2]) != SHENHE_OK) return 4;
  printf("reload ok\n");
  if (shenhe_engine_reload_from_path(engine, "/nonexistent.toml") != SHENHE_RULES_ERROR) return 5;
  stop = 1;
  for (int i = 0; i < 4; i++) pthread_join(threads[i], NULL);
  const char *b = "乙乙";
  shenhe_action action;
  bool report;
  size_t hits = 0;
  shenhe_scan_text(engine, (const uint8_t *)b, strlen(b), &action, &report, &hits);
  if (hits == 1) printf("bad reload kept the old rules\n");
  printf("scans that saw a half rule set: %d\n", failures);
  shenhe_engine_free(engine);
  return failures == 0 ? 0 : 6;
}
