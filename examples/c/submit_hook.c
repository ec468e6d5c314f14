/* A forum's submit hook in C: what a Discuz!-style back end does with shenhe on every post.
 *
 * One engine and one moderator are made at start-up and shared by every request thread.
 * Each submitted post (the JSON of the design: text, id, board, time, poster with IP, port,
 * account and real-name reference) goes through shenhe_moderate_json, which scans it,
 * applies repeat-offence escalation, records the decision in the audit store (kept six
 * months, tamper-evident) and files a report when one is due. The hook then
 * publishes, publishes masked, holds, or rejects the post. Rules are reloaded without a
 * restart on SIGHUP in a real server; here, on a line "#reload".
 *
 * Build: cc -Iinclude examples/c/submit_hook.c target/release/libshenhe.a -lpthread -ldl -lm
 * Run:   ./a.out [RULES_PATH|-] [REPORTS_DIR] [AUDIT_DB] < posts.jsonl
 *        (SHENHE_AUDIT_KEY in the environment seals personal fields in the audit store)
 */
#include <stdio.h>
#include <string.h>
#include "shenhe.h"

/* What the forum does with a post. */
typedef enum { PUBLISH, PUBLISH_MASKED, HOLD, REJECT, ERROR } verdict;

static void log_error(const char *what) {
  char msg[512];
  size_t n;
  shenhe_last_error(msg, sizeof msg, &n);
  fprintf(stderr, "shenhe: %s: %s\n", what, msg);
}

/* The action named in a decision: the decision JSON always has "action":"…". */
static verdict verdict_of(const char *decision) {
  const char *a = strstr(decision, "\"action\":\"");
  if (!a) return ERROR;
  a += strlen("\"action\":\"");
  if (!strncmp(a, "allow\"", 6)) return PUBLISH;
  if (!strncmp(a, "mask\"", 5)) return PUBLISH_MASKED; /* show the decision's "masked" text */
  if (!strncmp(a, "review\"", 7)) return HOLD;
  return REJECT; /* block or delete: not shown; the record is kept (and reported when due) */
}

/* The hook: called once per submitted post, from any request thread. */
static verdict on_submit(shenhe_moderator *m, const char *post_json, int *reported) {
  char *decision = NULL;
  shenhe_status s = shenhe_moderate_json(m, (const uint8_t *)post_json, strlen(post_json), &decision);
  if (s != SHENHE_OK) {
    log_error("post rejected as unreadable");
    return ERROR; /* fail closed: an unreadable post is not published */
  }
  verdict v = verdict_of(decision);
  *reported = strstr(decision, "\"report\":true") != NULL;
  shenhe_string_free(decision);
  return v;
}

int main(int argc, char **argv) {
  const char *rules = argc > 1 && strcmp(argv[1], "-") ? argv[1] : NULL;
  const char *reports = argc > 2 ? argv[2] : NULL;
  const char *audit = argc > 3 ? argv[3] : NULL;
  shenhe_engine *engine = NULL;
  shenhe_status s = rules ? shenhe_engine_new_from_path(rules, &engine) : shenhe_engine_new_bundled(&engine);
  if (s != SHENHE_OK) {
    log_error("cannot load the rules");
    return 1;
  }
  shenhe_moderator *moderator = NULL;
  if (shenhe_moderator_new(engine, reports, audit, &moderator) != SHENHE_OK) {
    log_error("cannot start the moderator");
    shenhe_engine_free(engine);
    return 1;
  }
  static const char *names[] = {"publish", "publish masked", "hold for review", "reject", "reject (unreadable)"};
  char line[1 << 16];
  int n = 0;
  while (fgets(line, sizeof line, stdin)) {
    line[strcspn(line, "\r\n")] = 0;
    if (!line[0]) continue;
    if (!strcmp(line, "#reload")) {
      /* A bad rule file leaves the old rules in place: the forum keeps running. */
      if (!rules || shenhe_engine_reload_from_path(engine, rules) != SHENHE_OK) log_error("reload failed");
      else printf("rules reloaded\n");
      continue;
    }
    int reported = 0;
    verdict v = on_submit(moderator, line, &reported);
    printf("post %d: %s%s\n", ++n, names[v], reported ? ", reported" : "");
  }
  s = shenhe_moderator_free(moderator); /* writes the reports index */
  if (s != SHENHE_OK) log_error("closing the moderator");
  shenhe_engine_free(engine);
  return s == SHENHE_OK ? 0 : 1;
}
