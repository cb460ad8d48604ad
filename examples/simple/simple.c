/* The smallest complete libqisa program: load a model, tokenize a prompt,
 * decode it, then sample and print tokens one at a time.
 *   simple MODEL.qisa [PROMPT] */
#include <stdio.h>
#include <string.h>

#include "qisa.h"

int main(int argc, char** argv) {
  const char* path = argc > 1 ? argv[1] : "models/default.qisa";
  const char* prompt = argc > 2 ? argv[2] : "ROMEO:";
  char err[512];
  qisa_model* model = NULL;
  qisa_context* ctx = NULL;
  qisa_sampler* sampler = NULL;
  qisa_sampler_params sp;
  qisa_batch_entry entry;
  int32_t tokens[256];
  size_t n_tokens = 0, i;
  int step, rc = 1;

  if (qisa_model_load_file(path, NULL, &model, err, sizeof err) != QISA_OK) {
    fprintf(stderr, "simple: %s\n", err);
    return 1;
  }
  if (qisa_context_create(model, NULL, &ctx, err, sizeof err) != QISA_OK) {
    fprintf(stderr, "simple: %s\n", err);
    goto done;
  }
  if (qisa_tokenize(model, prompt, strlen(prompt), tokens, 256, &n_tokens, 0, err, sizeof err) != QISA_OK ||
      n_tokens == 0) {
    fprintf(stderr, "simple: cannot tokenize the prompt: %s\n", err);
    goto done;
  }
  qisa_sampler_default_params(&sp);
  sp.seed = 42;
  if (qisa_sampler_create(&sp, &sampler) != QISA_OK) goto done;

  /* The prompt: one entry per token, logits for the last one. */
  for (i = 0; i < n_tokens; ++i) {
    entry.seq_id = 0;
    entry.token = tokens[i];
    entry.logits = i + 1 == n_tokens;
    if (qisa_decode(ctx, &entry, 1) != QISA_OK) {
      fprintf(stderr, "simple: %s\n", qisa_context_last_error(ctx));
      goto done;
    }
    qisa_sampler_accept(sampler, tokens[i]);
  }
  printf("%s", prompt);
  for (step = 0; step < 100; ++step) {
    const float* logits = NULL;
    const char* piece = NULL;
    qisa_model_info info;
    int32_t next;
    info.struct_size = sizeof info;
    qisa_model_get_info(model, &info);
    qisa_get_logits(ctx, 0, &logits);
    qisa_sampler_sample(sampler, logits, info.vocab_size, &next);
    qisa_sampler_accept(sampler, next);
    qisa_token_piece(model, next, &piece);
    printf("%s", piece);
    entry.token = next;
    entry.logits = 1;
    if (qisa_decode(ctx, &entry, 1) != QISA_OK) {
      fprintf(stderr, "simple: %s\n", qisa_context_last_error(ctx));
      goto done;
    }
  }
  printf("\n");
  rc = 0;
done:
  qisa_sampler_free(sampler);
  qisa_context_free(ctx);
  qisa_model_free(model);
  return rc;
}
