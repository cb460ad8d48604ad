/* Compiled as C99 with -Wall -Wextra -pedantic -Werror: the public header is
 * plain C. Running it checks the version query and a few status paths. */
#include <stdio.h>
#include <string.h>

#include "qisa.h"

int main(void) {
  qisa_model_params params;
  qisa_model* model = NULL;
  char err[256];
  qisa_status st;

  if (qisa_version_number() != QISA_VERSION_NUMBER) return 1;
  if (strcmp(qisa_version(), QISA_VERSION_STRING) != 0) return 2;
  qisa_model_default_params(&params);
  if (params.struct_size != sizeof params) return 3;
  st = qisa_model_load_file("/nonexistent/model.qisa", &params, &model, err, sizeof err);
  if (st != QISA_ERR_IO || model != NULL || strstr(err, "/nonexistent/model.qisa") == NULL) return 4;
  if (strcmp(qisa_status_string(QISA_ERR_IO), "I/O error") != 0) return 5;
  printf("C99: libqisa %s, load error: %s\n", qisa_version(), err);
  return 0;
}
