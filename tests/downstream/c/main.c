/* A user's C program, written from the README's C snippet: generates 100
 * tokens with seed 42 from the model given as argv[1] and prints the text
 * (prompt included, like qisa-generate), after checking that errors come
 * back as statuses. */
#include <stdio.h>
#include <string.h>

#include <qisa.h>

static int print_piece(const char* s, size_t n, void* user) {
  (void)user;
  fwrite(s, 1, n, stdout);
  return 0;
}

int main(int argc, char** argv) {
  char err[256];
  qisa_model* model = NULL;
  qisa_context* ctx = NULL;
  if (qisa_model_load_file("/nonexistent.qisa", NULL, &model, err, sizeof err) != QISA_ERR_IO || model) return 2;
  if (strcmp(qisa_version(), QISA_VERSION_STRING) != 0) return 3;
  if (argc < 2) return 4;
  if (qisa_model_load_file(argv[1], NULL, &model, err, sizeof err) != QISA_OK ||
      qisa_context_create(model, NULL, &ctx, err, sizeof err) != QISA_OK) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  qisa_generate_params gp;
  qisa_generate_default_params(&gp);
  gp.max_tokens = 100;
  gp.sampling.seed = 42;
  gp.on_piece = print_piece;
  fputs("ROMEO:", stdout);
  if (qisa_generate(ctx, "ROMEO:", &gp, NULL) != QISA_OK) fprintf(stderr, "%s\n", qisa_context_last_error(ctx));
  printf("\n");
  qisa_context_free(ctx);
  qisa_model_free(model);
  return 0;
}
