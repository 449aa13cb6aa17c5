/*
 * test_render_budget.c - the server renders chat templates with a short time
 * budget (chat_template_render_budget of tok/template.h): a slow template
 * fails with TimeoutError naming the budget, soon after it; a fast one
 * renders as with the default budget.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "base/util.h"
#include "inferd.h"
#include "tok/template.h"

static const char SLOW[] = "{% set s='x'*10000000 %}{% for j in range(10) %}{% for i in range(100000) %}"
                           "{% if 'y' in s %}{% endif %}{% endfor %}{% endfor %}";

Test(render_budget, slow_template_times_out_at_the_budget) {
    chat_template *t = NULL;
    char err[512] = "";
    cr_assert_eq(chat_template_parse(SLOW, strlen(SLOW), &t, err, sizeof err), 0, "%s", err);
    buf out = BUF_INIT;
    double t0 = time_now_s();
    int rc = chat_template_render_budget(t, NULL, 200, &out, err, sizeof err);
    double took = time_now_s() - t0;
    cr_assert_eq(rc, INFERD_EINVAL, "rc %d: %s", rc, err);
    cr_assert(strstr(err, "TimeoutError: the render took longer than 200 ms"), "%s", err);
    cr_assert(took < 1.5, "the render ran %.2f s past a 200 ms budget", took);
    cr_assert_eq(out.len, 0);
    buf_free(&out);
    chat_template_free(t);
}

Test(render_budget, fast_template_renders) {
    const char *src = "{% for m in messages %}{{ m }};{% endfor %}";
    chat_template *t = NULL;
    char err[512] = "";
    cr_assert_eq(chat_template_parse(src, strlen(src), &t, err, sizeof err), 0, "%s", err);
    json_t *ctx = json_pack("{s:[s,s]}", "messages", "a", "b");
    buf out = BUF_INIT;
    cr_assert_eq(chat_template_render_budget(t, ctx, 1000, &out, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(out.data, "a;b;");
    buf_free(&out);
    json_decref(ctx);
    chat_template_free(t);
}
