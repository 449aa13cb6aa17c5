/*
 * main.c - the inferd binary: dispatches to a subcommand (cli.h).
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "inferd.h"

struct command {
    const char *name;
    cli_cmd_fn fn;
    const char *help;
};

static void usage(FILE *f, const struct command *cmds, size_t n) {
    fprintf(f, "inferd %s - LLM inference server\n\nusage: inferd <command> [options]\n\ncommands:\n",
            INFERD_VERSION);
    for (size_t i = 0; i < n; i++)
        if (cmds[i].fn) fprintf(f, "  %-14s %s\n", cmds[i].name, cmds[i].help);
    fprintf(f, "\n'inferd <command> --help' lists a command's options.\n");
}

int main(int argc, char **argv) {
    static struct command cmds[] = {
#define CLI_ENTRY(name, help) {#name, NULL, help},
        CLI_COMMANDS(CLI_ENTRY)
#undef CLI_ENTRY
    };
    size_t n = sizeof cmds / sizeof cmds[0];
    size_t k = 0;
#define CLI_BIND(name, help) cmds[k++].fn = cmd_##name;
    CLI_COMMANDS(CLI_BIND)
#undef CLI_BIND
    for (size_t i = 0; i < n; i++) {
        static char names[16][32];
        /* chat_template is spelled chat-template on the command line. */
        snprintf(names[i], sizeof names[i], "%s", cmds[i].name);
        for (char *p = names[i]; *p; p++)
            if (*p == '_') *p = '-';
        cmds[i].name = names[i];
    }
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout, cmds, n);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
        printf("inferd %s\n", INFERD_VERSION);
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (strcmp(argv[1], cmds[i].name)) continue;
        if (!cmds[i].fn) {
            fprintf(stderr, "inferd: command '%s' is not part of this build\n", argv[1]);
            return 2;
        }
        return cmds[i].fn(argc - 1, argv + 1);
    }
    fprintf(stderr, "inferd: unknown command '%s'\n\n", argv[1]);
    usage(stderr, cmds, n);
    return 2;
}
