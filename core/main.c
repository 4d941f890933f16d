/* forumd -c FILE runs the server; forumd -t -c FILE checks the configuration and exits. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include "forum.h"

static void usage(FILE *fp)
{
    fprintf(fp, "usage: forumd [-t] -c FILE\n"
                "  -c FILE  the configuration (YAML)\n"
                "  -t       check the configuration (and the plugins' settings) and exit: 0 when it is good,\n"
                "           1 with FILE:LINE: message when not\n"
                "  -v       print the version\n");
}

int main(int argc, char **argv)
{
    const char *path = NULL;
    int check_only = 0, ch, ret;
    char err[1024];
    forum_config_t *conf;

    while ((ch = getopt(argc, argv, "c:thv")) != -1) {
        switch (ch) {
        case 'c':
            path = optarg;
            break;
        case 't':
            check_only = 1;
            break;
        case 'v':
            printf("forumd %s\n", FORUM_VERSION);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 1;
        }
    }
    if (path == NULL || optind != argc) {
        usage(stderr);
        return 1;
    }
    if ((conf = forum_config_load(path, err, sizeof(err))) == NULL) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    if (check_only) {
        /* the plugins are opened as a start would open them (their settings checked), but not initialized */
        ret = forum_server_prepare_tls(conf, err, sizeof(err));
        if (ret == 0)
            ret = forum_plugins_check_config(conf, err, sizeof(err));
        if (ret != 0)
            fprintf(stderr, "%s\n", err);
        else
            printf("%s: the configuration is good\n", path);
        forum_config_free(conf);
        return ret == 0 ? 0 : 1;
    }
    ret = forum_server_run(conf);
    forum_config_free(conf);
    return ret;
}
