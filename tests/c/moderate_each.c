/* A forum's submit path in C: one shenhe_moderate_json call per post, as a back end makes
 * them. Usage: moderate_each AUDIT_DB KEY_FILE REPORTS_DIR < posts.jsonl > decisions.jsonl
 * Prints each decision (or "ERROR <status> <message>") on its own line, in input order. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "shenhe.h"

static void fail(const char *what, shenhe_status s) {
  char buf[512];
  size_t n = 0;
  shenhe_last_error(buf, sizeof buf, &n);
  fprintf(stderr, "%s: status %d: %s\n", what, (int)s, buf);
}

int main(int argc, char **argv) {
  if (argc != 4) return 2;
  shenhe_engine *engine = NULL;
  shenhe_status s = shenhe_engine_new_bundled(&engine);
  if (s != SHENHE_OK) { fail("engine", s); return 1; }
  shenhe_moderator_options options;
  if (shenhe_moderator_options_init(&options) != SHENHE_OK) return 1;
  options.audit_db = argv[1];
  options.audit_key_file = argv[2];
  options.reports_dir = argv[3];
  options.report_deadline_hours = 24;
  shenhe_moderator *moderator = NULL;
  s = shenhe_moderator_new_with_options(engine, &options, &moderator);
  if (s != SHENHE_OK) { fail("moderator", s); return 1; }
  char *line = NULL;
  size_t cap = 0;
  ssize_t len;
  while ((len = getline(&line, &cap, stdin)) > 0) {
    if (line[len - 1] == '\n') line[--len] = 0;
    char *decision = NULL;
    s = shenhe_moderate_json(moderator, (const uint8_t *)line, (size_t)len, &decision);
    if (s == SHENHE_OK) {
      printf("%s\n", decision);
      shenhe_string_free(decision);
    } else {
      char buf[512];
      size_t n = 0;
      shenhe_last_error(buf, sizeof buf, &n);
      printf("ERROR %d %s\n", (int)s, buf);
    }
  }
  free(line);
  s = shenhe_moderator_free(moderator);
  shenhe_engine_free(engine);
  if (s != SHENHE_OK) { fail("free", s); return 1; }
  return 0;
}
