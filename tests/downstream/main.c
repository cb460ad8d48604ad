#include <stdio.h>
#include <string.h>

#include <qisa.h>

int main(void) {
  qisa_model* model = NULL;
  char err[256];
  qisa_status st = qisa_model_load_file("/nonexistent.qisa", NULL, &model, err, sizeof err);
  if (st != QISA_ERR_IO) return 1;
  if (strcmp(qisa_version(), QISA_VERSION_STRING) != 0) return 2;
  printf("downstream: libqisa %s ok\n", qisa_version());
  return 0;
}
