// mambaprune's command line: `mambaprune COMMAND [options]`.
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "--help") == 0) {
        fprintf(stderr, "usage: mambaprune train --config FILE [--set section.key=value ...]\n");
        return argc < 2 ? 2 : 0;
    }
    fprintf(stderr, "mambaprune: command '%s' is not implemented yet\n", argv[1]);
    return 2;
}
