/* Drives the C API through every call and every error path; prints what a host sees. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "shenhe.h"

#define CHECK(cond) do { if (!(cond)) { printf("FAILED: %s (line %d)\n", #cond, __LINE__); return 1; } } while (0)

static void last_error(const char *what) {
  char buf[512];
  size_t n = 0;
  shenhe_last_error(buf, sizeof buf, &n);
  printf("%s: %s\n", what, buf);
}

int main(void) {
  shenhe_engine *engine = NULL;
  CHECK(shenhe_engine_new_bundled(&engine) == SHENHE_OK && engine != NULL);
  printf("bundled engine: ok\n");
  CHECK(shenhe_engine_warm_up(engine) == SHENHE_OK);
  CHECK(shenhe_engine_warm_up(NULL) == SHENHE_NULL_ARGUMENT);
  last_error("warm_up(NULL)");

  char hash[65];
  size_t written = 12345;
  CHECK(shenhe_engine_ruleset_hash(engine, hash, sizeof hash, &written) == SHENHE_OK);
  printf("ruleset hash: %zu hex chars\n", written);
  char small[10];
  written = 12345;
  CHECK(shenhe_engine_ruleset_hash(engine, small, sizeof small, &written) == SHENHE_BUFFER_TOO_SMALL);
  CHECK(written == 12345); /* out-params are written only on success */
  last_error("small buffer");

  const char *post = "{\"id\":\"p1\",\"text\":\"出售冰毒\",\"poster\":{\"user_id\":\"u1\",\"port\":\"abc\"}}";
  char *decision = NULL;
  CHECK(shenhe_scan_json(engine, (const uint8_t *)post, strlen(post), &decision) == SHENHE_OK);
  CHECK(strstr(decision, "\"action\":\"delete\"") != NULL);
  CHECK(strstr(decision, "\"report\":true") != NULL);
  CHECK(strstr(decision, "poster.port") != NULL); /* a bad field is a warning, not a failure */
  printf("scan_json: delete, report, warning about poster.port\n");
  shenhe_string_free(decision);

  decision = (char *)0x1;
  const char *bad = "{\"id\":1}";
  CHECK(shenhe_scan_json(engine, (const uint8_t *)bad, strlen(bad), &decision) == SHENHE_INVALID_POST);
  CHECK(decision == (char *)0x1);
  last_error("post without text");
  const uint8_t latin1[] = {'{', '"', 't', 'e', 'x', 't', '"', ':', '"', 0xe9, '"', '}'};
  CHECK(shenhe_scan_json(engine, latin1, sizeof latin1, &decision) == SHENHE_INVALID_UTF8);
  last_error("invalid UTF-8");
  CHECK(shenhe_scan_json(NULL, (const uint8_t *)post, strlen(post), &decision) == SHENHE_NULL_ARGUMENT);
  CHECK(shenhe_scan_json(engine, NULL, 5, &decision) == SHENHE_NULL_ARGUMENT);
  CHECK(shenhe_scan_json(engine, (const uint8_t *)post, strlen(post), NULL) == SHENHE_NULL_ARGUMENT);
  last_error("NULL argument");

  shenhe_action action = SHENHE_ACTION_ALLOW;
  bool report = false;
  size_t hits = 0;
  const char *text = "賭*博和出售冰毒";
  shenhe_hits *list = NULL;
  CHECK(shenhe_scan_text(engine, (const uint8_t *)text, strlen(text), &action, &report, &hits, &list) == SHENHE_OK);
  printf("scan_text: action %d, report %d, %zu hits\n", (int)action, (int)report, hits);
  CHECK(shenhe_hits_texts(list) == 1 && shenhe_hits_count(list, 0) == hits);
  for (size_t i = 0; i < hits; i++) {
    shenhe_hit h;
    CHECK(shenhe_hits_get(list, 0, i, &h) == SHENHE_OK);
    printf("  hit %zu: %s, category %u, severity %d, bytes %zu..%zu = \"%.*s\", chars %zu..%zu, steps 0x%x\n", i, h.rule,
           (unsigned)h.category, (int)h.severity, h.start, h.end, (int)(h.end - h.start), text + h.start,
           h.char_start, h.char_end, (unsigned)h.steps);
  }
  shenhe_hit h;
  CHECK(shenhe_hits_get(list, 0, hits, &h) == SHENHE_INVALID_ARGUMENT);
  CHECK(shenhe_hits_get(list, 1, 0, &h) == SHENHE_INVALID_ARGUMENT);
  last_error("hit out of range");
  CHECK(shenhe_hits_get(NULL, 0, 0, &h) == SHENHE_NULL_ARGUMENT);
  CHECK(shenhe_hits_count(NULL, 0) == 0 && shenhe_hits_texts(NULL) == 0);
  shenhe_hits_free(list);
  CHECK(shenhe_scan_text(engine, NULL, 0, &action, &report, &hits, NULL) == SHENHE_OK && hits == 0);
  printf("scan_text of an empty text: %zu hits\n", hits);
  CHECK(shenhe_scan_text(engine, (const uint8_t *)"\xff", 1, &action, &report, &hits, NULL) == SHENHE_INVALID_UTF8);
  size_t huge_len = (1 << 20) + 1;
  char *huge = malloc(huge_len);
  CHECK(huge != NULL);
  memset(huge, 'a', huge_len);
  hits = 77;
  CHECK(shenhe_scan_text(engine, (const uint8_t *)huge, huge_len, &action, &report, &hits, NULL) == SHENHE_TOO_LARGE);
  CHECK(hits == 77);
  free(huge);
  last_error("text over max_post_bytes");
  CHECK(shenhe_scan_text(engine, (const uint8_t *)text, strlen(text), NULL, &report, &hits, NULL) == SHENHE_NULL_ARGUMENT);

  /* The decision JSON into the caller's own buffer. */
  char decision_buf[4096];
  size_t decision_len = 0;
  CHECK(shenhe_scan_json_into(engine, (const uint8_t *)post, strlen(post), decision_buf, sizeof decision_buf, &decision_len) == SHENHE_OK);
  CHECK(decision_len == strlen(decision_buf) && strstr(decision_buf, "\"action\":\"delete\"") != NULL);
  size_t needed = 0;
  CHECK(shenhe_scan_json_into(engine, (const uint8_t *)post, strlen(post), small, sizeof small, &needed) == SHENHE_BUFFER_TOO_SMALL);
  CHECK(needed == decision_len + 1);
  printf("scan_json_into: fits in %zu bytes; a 10-byte buffer is told so\n", needed);

  /* A batch laid out like an Arrow string column. */
  const char data[] = "出售冰毒" "今天天气不错" "\xff\xfe";
  size_t offsets[] = {0, 12, 30, 32};
  shenhe_action actions[3] = {9, 9, 9};
  bool reports[3] = {0, 0, 0};
  shenhe_status statuses[3];
  shenhe_hits *batch_hits = NULL;
  CHECK(shenhe_scan_batch(engine, (const uint8_t *)data, offsets, 3, actions, reports, statuses, &batch_hits) == SHENHE_OK);
  printf("batch: statuses %d %d %d, actions %d %d %d, hits %zu %zu %zu\n", statuses[0], statuses[1], statuses[2],
         (int)actions[0], (int)actions[1], (int)actions[2], shenhe_hits_count(batch_hits, 0),
         shenhe_hits_count(batch_hits, 1), shenhe_hits_count(batch_hits, 2));
  CHECK(shenhe_hits_texts(batch_hits) == 3);
  shenhe_hits_free(batch_hits);
  size_t backwards[] = {0, 12, 6, 32};
  CHECK(shenhe_scan_batch(engine, (const uint8_t *)data, backwards, 3, NULL, NULL, statuses, NULL) == SHENHE_OK);
  printf("batch with offsets going backwards: statuses %d %d %d\n", statuses[0], statuses[1], statuses[2]);

  shenhe_engine *other = (shenhe_engine *)0x1;
  CHECK(shenhe_engine_new_from_path("/nonexistent/rules", &other) == SHENHE_RULES_ERROR);
  CHECK(other == (shenhe_engine *)0x1);
  last_error("missing rules");
  const char *broken = "[[rule]]\nid = \"x\"\ncategory = 7\nseverity = \"high\"\nterms = [\"  \"]\n";
  CHECK(shenhe_engine_new_from_bytes((const uint8_t *)broken, strlen(broken), &other) == SHENHE_RULES_ERROR);
  last_error("broken rule bytes");
  const char *rules = "[policy]\nescalation = { count = 3, window_hours = 24, by = [\"user\"] }\n"
                      "[[rule]]\nid = \"x\"\ncategory = 8\nseverity = \"low\"\nterms = [\"笨蛋\"]\n";
  CHECK(shenhe_engine_new_from_bytes_with_base((const uint8_t *)rules, strlen(rules), NULL, &other) == SHENHE_OK);
  const char *insult = "你这个笨 蛋";
  CHECK(shenhe_scan_text(other, (const uint8_t *)insult, strlen(insult), &action, &report, &hits, NULL) == SHENHE_OK);
  printf("rules from bytes: action %d, %zu hits\n", (int)action, hits);

  /* The whole pipeline: escalation on the third offence of one account within the window. */
  shenhe_moderator *moderator = NULL;
  CHECK(shenhe_moderator_new(other, NULL, NULL, &moderator) == SHENHE_OK);
  const char *offences[] = {
    "{\"id\":1,\"text\":\"笨蛋\",\"time\":\"2026-11-20T10:00:00+08:00\",\"poster\":{\"user_id\":\"u7\"}}",
    "{\"id\":2,\"text\":\"笨蛋\",\"time\":\"2026-11-20T11:00:00+08:00\",\"poster\":{\"user_id\":\"u7\"}}",
    "{\"id\":3,\"text\":\"笨蛋\",\"time\":\"2026-11-20T12:00:00+08:00\",\"poster\":{\"user_id\":\"u7\"}}",
  };
  for (int i = 0; i < 3; i++) {
    char *d = NULL;
    CHECK(shenhe_moderate_json(moderator, (const uint8_t *)offences[i], strlen(offences[i]), &d) == SHENHE_OK);
    const char *a = strstr(d, "\"action\":");
    printf("moderate post %d: %.16s measures %s\n", i + 1, a, strstr(d, "\"warn\"") ? "[warn]" : "[]");
    shenhe_string_free(d);
  }
  CHECK(shenhe_moderate_json(NULL, (const uint8_t *)offences[0], strlen(offences[0]), &decision) == SHENHE_NULL_ARGUMENT);
  CHECK(shenhe_moderate_json(moderator, (const uint8_t *)bad, strlen(bad), &decision) == SHENHE_INVALID_POST);
  CHECK(shenhe_moderator_new(NULL, NULL, NULL, &moderator) == SHENHE_NULL_ARGUMENT);
  shenhe_moderator *unwritable = (shenhe_moderator *)0x1;
  CHECK(shenhe_moderator_new(other, "/proc/shenhe-reports", NULL, &unwritable) == SHENHE_IO_ERROR);
  CHECK(unwritable == (shenhe_moderator *)0x1);
  last_error("reports directory not writable");
  CHECK(shenhe_moderator_free(moderator) == SHENHE_OK);
  CHECK(shenhe_moderator_free(NULL) == SHENHE_OK);

  /* A moderator from options: defaults, refusals, escalation off, a size limit, a batch. */
  shenhe_moderator_options options;
  CHECK(shenhe_moderator_options_init(NULL) == SHENHE_NULL_ARGUMENT);
  CHECK(shenhe_moderator_options_init(&options) == SHENHE_OK);
  CHECK(options.escalation && options.report_deadline_hours == 24);
  CHECK(options.utc_offset_hours == SHENHE_UTC_OFFSET_STORE && options.max_post_bytes == 0);
  shenhe_moderator *configured = (shenhe_moderator *)0x1;
  options.utc_offset_hours = 15;
  CHECK(shenhe_moderator_new_with_options(other, &options, &configured) == SHENHE_INVALID_ARGUMENT);
  CHECK(configured == (shenhe_moderator *)0x1);
  last_error("offset out of range");
  options.utc_offset_hours = SHENHE_UTC_OFFSET_STORE;
  options.audit_db = "/tmp/shenhe-smoke-never-created.db";
  options.audit_key_file = "/nonexistent/shenhe.key";
  CHECK(shenhe_moderator_new_with_options(other, &options, &configured) == SHENHE_AUDIT_ERROR);
  CHECK(configured == (shenhe_moderator *)0x1);
  last_error("audit key file missing");
  CHECK(shenhe_moderator_new_with_options(other, NULL, &configured) == SHENHE_NULL_ARGUMENT);
  options.audit_db = NULL;
  options.audit_key_file = NULL;
  options.escalation = false;
  options.max_post_bytes = 64;
  CHECK(shenhe_moderator_new_with_options(other, &options, &configured) == SHENHE_OK);
  for (int i = 0; i < 3; i++) {
    char *d = NULL;
    CHECK(shenhe_moderate_json(configured, (const uint8_t *)offences[i], strlen(offences[i]), &d) == SHENHE_OK);
    CHECK(strstr(d, "\"measures\"") == NULL); /* escalation off */
    shenhe_string_free(d);
  }
  const char *entries[] = {
    "{\"id\":1,\"text\":\"笨蛋\",\"poster\":{\"user_id\":\"u7\"}}",
    "{\"id\":2,\"title\":\"no text\"}",
    "{\"id\":3,\"text\":\"笨蛋笨蛋笨蛋笨蛋笨蛋笨蛋笨蛋笨蛋笨蛋笨蛋笨蛋\"}",
  };
  char batch[512] = "";
  size_t entry_offsets[4] = {0};
  for (int i = 0; i < 3; i++) {
    strcat(batch, entries[i]);
    entry_offsets[i + 1] = strlen(batch);
  }
  shenhe_status entry_status[3];
  char *lines = NULL;
  size_t lines_len = 0;
  CHECK(shenhe_moderate_batch_jsonl(configured, SHENHE_BATCH_POSTS_JSON, (const uint8_t *)batch,
                                    entry_offsets, NULL, 3, entry_status, &lines, &lines_len) == SHENHE_OK);
  CHECK(entry_status[0] == SHENHE_OK && entry_status[1] == SHENHE_INVALID_POST && entry_status[2] == SHENHE_TOO_LARGE);
  CHECK(strlen(lines) == lines_len);
  printf("moderate batch: statuses %d %d %d\n%s", (int)entry_status[0], (int)entry_status[1], (int)entry_status[2], strstr(lines, "\n") + 1);
  shenhe_string_free(lines);
  CHECK(shenhe_moderate_batch_jsonl(NULL, SHENHE_BATCH_POSTS_JSON, (const uint8_t *)batch,
                                    entry_offsets, NULL, 3, entry_status, &lines, &lines_len) == SHENHE_NULL_ARGUMENT);
  CHECK(shenhe_moderator_free(configured) == SHENHE_OK);
  shenhe_hits_free(NULL);
  shenhe_engine_free(other);

  shenhe_engine_free(NULL);
  shenhe_string_free(NULL);
  shenhe_engine_free(engine);
  printf("done\n");
  return 0;
}
