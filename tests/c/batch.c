/* The batch calls against one call per entry.
 * shenhe_scan_batch: for every line of TEXTS (one text per line), the batch's status, action,
 * report flag and hits (offsets, rule, steps) must equal those of shenhe_scan_text on that
 * text alone. Lines that are not valid UTF-8 must fail alone.
 * shenhe_scan_batch_jsonl: on POSTS (JSON Lines), each output line must be byte for byte the
 * decision shenhe_scan_json gives for that post, on one thread and on the shared pool; on
 * TEXTS with every third entry null, a null entry is an empty text and the others equal
 * shenhe_scan_text.
 * Usage: batch TEXTS.txt [POSTS.jsonl] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "shenhe.h"

/* Reads a file of lines into data + offsets (Arrow string layout); returns the line count. */
static size_t read_lines(const char *path, uint8_t **data_out, size_t **offsets_out) {
  FILE *f = fopen(path, "rb");
  if (!f) exit(2);
  size_t cap = 1 << 20, len = 0, count = 0, ocap = 1024;
  uint8_t *data = malloc(cap);
  size_t *offsets = malloc(ocap * sizeof *offsets);
  offsets[0] = 0;
  int c;
  while ((c = fgetc(f)) != EOF) {
    if (c == '\n') {
      if (count + 2 > ocap) offsets = realloc(offsets, (ocap *= 2) * sizeof *offsets);
      offsets[++count] = len;
      continue;
    }
    if (len + 1 > cap) data = realloc(data, cap *= 2);
    data[len++] = (uint8_t)c;
  }
  fclose(f);
  *data_out = data;
  *offsets_out = offsets;
  return count;
}

/* The length of the line starting at `p` (without its newline). */
static size_t line_len(const char *p) { return (size_t)(strchr(p, '\n') - p); }

/* Every line of the JSONL batch output equals shenhe_scan_json (or, for texts, the action
 * of shenhe_scan_text); returns the mismatches. */
static size_t check_jsonl(shenhe_engine *engine, shenhe_batch_input kind, const uint8_t *data,
                          const size_t *offsets, const uint8_t *valid, size_t count, size_t threads,
                          size_t *decided) {
  shenhe_status *statuses = malloc(count * sizeof *statuses);
  char *out = NULL;
  size_t out_len = 0, mismatches = 0, lines = 0;
  if (shenhe_scan_batch_jsonl(engine, kind, data, offsets, valid, count, threads, statuses, &out, &out_len) !=
      SHENHE_OK)
    exit(5);
  for (size_t k = 0; k < out_len; k++) lines += out[k] == '\n';
  if (lines != count || strlen(out) != out_len) mismatches++;
  const char *p = out;
  for (size_t i = 0; i < count && lines == count; i++) {
    const char *line = p;
    size_t n = line_len(line);
    p = line + n + 1;
    if (kind == SHENHE_BATCH_POSTS_JSON) {
      char *one = NULL;
      shenhe_status s = shenhe_scan_json(engine, data + offsets[i], offsets[i + 1] - offsets[i], &one);
      if (s != statuses[i]) mismatches++;
      else if (s == SHENHE_OK && (strlen(one) != n || memcmp(one, line, n) != 0)) mismatches++;
      else if (s != SHENHE_OK && strncmp(line, "{\"error\":", 9) != 0) mismatches++;
      shenhe_string_free(one);
    } else {
      shenhe_action a;
      bool r;
      size_t h;
      int is_null = valid && !valid[i];
      /* A null text is not a post: an error, never allow. */
      shenhe_status s = is_null ? SHENHE_INVALID_POST
                                : shenhe_scan_text(engine, data + offsets[i], offsets[i + 1] - offsets[i], &a, &r, &h, NULL);
      static const char *names[] = {"allow", "mask", "review", "block", "delete"};
      char want[64];
      snprintf(want, sizeof want, "\"action\":\"%s\"", names[a]);
      if (s != statuses[i]) mismatches++;
      else if (s == SHENHE_OK && !strstr(line, want)) mismatches++;
      else if (s != SHENHE_OK && !strstr(line, "\"error\":")) mismatches++;
    }
    if (statuses[i] == SHENHE_OK) (*decided)++;
  }
  shenhe_string_free(out);
  free(statuses);
  return mismatches;
}

int main(int argc, char **argv) {
  if (argc < 2) return 2;
  uint8_t *data;
  size_t *offsets;
  size_t count = read_lines(argv[1], &data, &offsets);

  shenhe_engine *engine = NULL;
  if (shenhe_engine_new_bundled(&engine) != SHENHE_OK) return 3;
  shenhe_action *actions = malloc(count * sizeof *actions);
  bool *reports = malloc(count * sizeof *reports);
  shenhe_status *statuses = malloc(count * sizeof *statuses);
  shenhe_hits *hits = NULL;
  if (shenhe_scan_batch(engine, data, offsets, count, actions, reports, statuses, &hits) != SHENHE_OK) return 4;

  size_t mismatches = 0, total_hits = 0, failed = 0;
  for (size_t i = 0; i < count; i++) {
    shenhe_action a;
    bool r;
    size_t n;
    shenhe_hits *one = NULL;
    shenhe_status s = shenhe_scan_text(engine, data + offsets[i], offsets[i + 1] - offsets[i], &a, &r, &n, &one);
    if (s != statuses[i]) { mismatches++; continue; }
    if (s != SHENHE_OK) { failed++; if (shenhe_hits_count(hits, i) != 0) mismatches++; continue; }
    if (a != actions[i] || r != reports[i] || n != shenhe_hits_count(hits, i)) mismatches++;
    for (size_t k = 0; k < n && k < shenhe_hits_count(hits, i); k++) {
      shenhe_hit x, y;
      if (shenhe_hits_get(one, 0, k, &x) != SHENHE_OK || shenhe_hits_get(hits, i, k, &y) != SHENHE_OK ||
          x.start != y.start || x.end != y.end || x.steps != y.steps || strcmp(x.rule, y.rule) != 0 ||
          x.category != y.category)
        mismatches++;
    }
    total_hits += n;
    shenhe_hits_free(one);
  }
  printf("batch vs one by one: %zu texts, %zu hits, %zu failed alike, %zu mismatches\n", count, total_hits, failed,
         mismatches);

  /* JSON Lines out: texts with every third entry null, on one thread. */
  uint8_t *valid = malloc(count);
  for (size_t i = 0; i < count; i++) valid[i] = i % 3 != 1;
  size_t decided = 0, jsonl_mismatches = check_jsonl(engine, SHENHE_BATCH_TEXTS, data, offsets, valid, count, 1, &decided);
  printf("jsonl texts: %zu decided, %zu mismatches\n", decided, jsonl_mismatches);
  mismatches += jsonl_mismatches;
  free(valid);
  if (argc > 2) {
    uint8_t *posts;
    size_t *post_offsets;
    size_t n = read_lines(argv[2], &posts, &post_offsets);
    for (size_t threads = 0; threads < 3; threads++) {
      decided = 0;
      jsonl_mismatches = check_jsonl(engine, SHENHE_BATCH_POSTS_JSON, posts, post_offsets, NULL, n, threads, &decided);
      printf("jsonl posts on %zu threads: %zu of %zu decided, %zu mismatches\n", threads, decided, n, jsonl_mismatches);
      mismatches += jsonl_mismatches;
    }
    free(posts);
    free(post_offsets);
  }
  shenhe_hits_free(hits);
  shenhe_engine_free(engine);
  free(data);
  free(offsets);
  free(actions);
  free(reports);
  free(statuses);
  return mismatches == 0 && total_hits > 0 ? 0 : 1;
}
