/* The batch call against one call per text: for every line of a file (one text per line),
 * the batch's status, action, report flag and hits (offsets, rule, steps) must equal those of
 * shenhe_scan_text on that text alone. Lines that are not valid UTF-8 must fail alone.
 * Usage: batch TEXTS.txt */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "shenhe.h"

int main(int argc, char **argv) {
  if (argc < 2) return 2;
  FILE *f = fopen(argv[1], "rb");
  if (!f) return 2;
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
  shenhe_hits_free(hits);
  shenhe_engine_free(engine);
  free(data);
  free(offsets);
  free(actions);
  free(reports);
  free(statuses);
  return mismatches == 0 && total_hits > 0 ? 0 : 1;
}
