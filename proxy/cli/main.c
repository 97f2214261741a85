#include "proxy/cli/cli.h"

int main(int argc, char **argv)
{
    return tf_cli_main(argc, argv);
}
