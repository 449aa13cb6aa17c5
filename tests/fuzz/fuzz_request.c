/*
 * fuzz_request.c - libFuzzer target for the OpenAI request validation
 * (src/server/openai_req.c): any bytes, parsed as a completions and as a
 * chat completions body. It must never crash, leak or hang; on success the
 * parsed struct must be self-consistent.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/openai_req.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    for (int chat = 0; chat <= 1; chat++) {
        oai_request r;
        oai_error e;
        if (oai_request_parse((const char *)data, size, chat, &r, &e) == 0) {
            if (r.sp.n < 1 || r.sp.n > OAI_MAX_N) abort();
            if (r.n_stop > OAI_MAX_STOP || r.sp.n_stop != r.n_stop) abort();
            if (r.logprobs < -1 || r.logprobs > OAI_MAX_LOGPROBS) abort();
            if (chat ? !r.messages : (r.n_prompts < 1 || !r.prompts)) abort();
            for (size_t i = 0; i < r.n_prompts; i++)
                if (!r.prompts[i].text && !r.prompts[i].n_ids) abort();
            oai_request_free(&r);
        } else if (e.status != 400 || strlen(e.msg) == 0) {
            abort();
        }
    }
    return 0;
}
