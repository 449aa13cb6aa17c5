/*
 * cli.h - the subcommands of the one inferd binary. Each lives in its own
 * cmd_<name>.c and takes (argc, argv) with argv[0] the subcommand name.
 * Exit codes: 0 success, 1 runtime error (bad file, bad input), 2 usage error.
 */
#ifndef CLI_CLI_H
#define CLI_CLI_H

typedef int (*cli_cmd_fn)(int argc, char **argv);

/* Commands are declared weak so that the binary links while a command's file
 * is being written on another branch; main() reports a missing one. */
#define CLI_COMMANDS(X)                                                               \
    X(serve, "serve the OpenAI-compatible HTTP API")                                  \
    X(generate, "generate text from a prompt, or a batch of prompts (--batch)")       \
    X(bench, "measure prefill and decode speed (like llama-bench)")                   \
    X(quantize, "convert a GGUF model to another weight type")                        \
    X(synth, "make a random-weight model with a real tokenizer (for benchmarks)")     \
    X(inspect, "print a GGUF file's header, metadata and tensors")                    \
    X(tokenize, "text on stdin -> token ids")                                         \
    X(detokenize, "token ids on stdin -> text")                                       \
    X(chat_template, "render a chat template with a JSON context")

#define CLI_DECLARE(name, help) int cmd_##name(int argc, char **argv) __attribute__((weak));
CLI_COMMANDS(CLI_DECLARE)
#undef CLI_DECLARE

#endif
