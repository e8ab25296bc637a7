#include <stdio.h>
#include "workbot_version.h"
int main(void) { printf("workbot %s\n", WORKBOT_VERSION); return 0; }
