/*
 * test_template.c - unit tests for the chat-template interpreter
 * (src/tok/template.h, jinja_*.c): language features against golden
 * renderings, error messages, sandbox limits and the ChatML default.
 *
 * The goldens table was produced by rendering each template with jinja2 3.1
 * in transformers' environment (ImmutableSandboxedEnvironment, trim_blocks,
 * lstrip_blocks, loopcontrols, json.dumps tojson, strftime_now fixed at
 * 2026-01-15 12:00:00) and golden_ctx; rows with an error give the exception
 * type the reference raised.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <string.h>

#include "tok/template.h"

#define NOW_S 1768478400 /* 2026-01-15 12:00:00 UTC */

struct golden {
    const char *name, *src, *want, *want_err;
};

/* Generated from jinja2 3.1 (transformers' environment); see the file comment. */
static const struct golden goldens[] = {
    {"arith",
     "{{ 1 + 2 }}|{{ 7 // 2 }}|{{ -7 // 2 }}|{{ -7 % 3 }}|{{ 7 / 2 }}|{{ 2 ** 10 }}|{{ 1.5 * 2 "
     "}}|{{ \"ab\" * 3 }}",
     "3|3|-4|2|3.5|1024|3.0|ababab", NULL},
    {"concat", "{{ \"a\" ~ 1 ~ none ~ true ~ q }}|{{ \"a\" + \"b\" }}|{{ [1] + [2] }}",
     "a1NoneTrue|ab|[1, 2]", NULL},
    {"slicing",
     "{{ s[0] }}{{ s[-1] }}{{ s[1:4] }}{{ s[::-1] }}{{ s[::2] }}{{ l[1:] }}{{ l[:-1] }}{{ u[1:5] "
     "}}{{ u[::-1] }}{{ l[::-2] }}",
     "HdelldlroW olleHHloWrd[1, 2][3, 1]n\303\257c\303\266\346\234\254\346\227\245 \302\275 "
     "\303\251d\303\266c\303\257n\303\234[2, 3]",
     NULL},
    {"missing_is_empty", "[{{ l[5] }}|{{ d.zz }}|{{ d[\"zz\"] }}|{{ nope }}|{{ none }}]",
     "[||||None]", NULL},
    {"python_str",
     "{{ [1, 2.5, \"a\", none, true, {\"k\": (1,)}] }}|{{ (1,2) }}|{{ {} }}|{{ \"it's\" }}|{{ "
     "[\"it's\"] }}",
     "[1, 2.5, 'a', None, True, {'k': (1,)}]|(1, 2)|{}|it's|[\"it's\"]", NULL},
    {"float_repr",
     "{{ 1e16 }} {{ 1e15 }} {{ 0.0001 }} {{ 0.00001 }} {{ 1/3 }} {{ 123456789.123 }} {{ 2.5e-10 }} "
     "{{ 10/2 }}",
     "1e+16 1000000000000000.0 0.0001 1e-05 0.3333333333333333 123456789.123 2.5e-10 5.0", NULL},
    {"ternary_logic",
     "{{ \"x\" if n > 3 else \"y\" }}[{{ \"x\" if n > 30 }}]{{ n > 3 and \"yes\" or \"no\" }}{{ 0 "
     "or \"\" or \"last\" }}{{ 1 and 2 }}{{ not n }}",
     "x[]yeslast2False", NULL},
    {"loop_vars",
     "{% for x in l %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}{{ "
     "loop.first }}{{ loop.last }}{{ loop.length }};{% endfor %}",
     "1032TrueFalse3;2121FalseFalse3;3210FalseTrue3;", NULL},
    {"loop_prev_next", "{% for x in l %}{{ loop.previtem }}-{{ loop.nextitem }};{% endfor %}",
     "-1;3-2;1-;", NULL},
    {"loop_else_filter",
     "{% for x in [] %}x{% else %}empty{% endfor %}|{% for x in l if x > 1 %}{{ x }}/{{ "
     "loop.length }} {% endfor %}",
     "empty|3/2 2/2 ", NULL},
    {"loop_break_continue",
     "{% for x in l %}{% if x == 1 %}{% break %}{% endif %}{{ x }}{% endfor %}|{% for x in l %}{% "
     "if x == 1 %}{% continue %}{% endif %}{{ x }}{% endfor %}",
     "3|32", NULL},
    {"loop_unpack",
     "{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}{% for a, b in [[1, 2], \"xy\"] %}{{ "
     "a }}{{ b }}{% endfor %}",
     "b=2;a=1;c=None;12xy", NULL},
    {"loop_cycle", "{% for x in l %}{{ loop.cycle(\"a\", \"b\") }}{% endfor %}", "aba", NULL},
    {"recursive_loop",
     "{% for item in [[1, [2, [3]]]] recursive %}<{% if item is iterable %}{{ loop(item) }}{% else "
     "%}{{ item }}{% endif %}>{% endfor %}",
     "<<1><<2><<3>>>>", NULL},
    {"scoping",
     "{% set x = 1 %}{% for i in l %}{% set x = i %}{% endfor %}{{ x }}|{% set ns = namespace(x=1) "
     "%}{% for i in l %}{% set ns.x = ns.x + i %}{% endfor %}{{ ns.x }}",
     "1|7", NULL},
    {"if_scope_leaks", "{% if true %}{% set y = 7 %}{% endif %}{{ y }}", "7", NULL},
    {"macros",
     "{% macro m(a, b=2) %}[{{ a }}-{{ b }}]{% endmacro %}{{ m(1) }}{{ m(1, 3) }}{{ m(b=5, a=0) "
     "}}{{ m() }}",
     "[1-2][1-3][0-5][-2]", NULL},
    {"macro_varargs",
     "{% macro m(a) %}{{ varargs }}{{ kwargs }}{% endmacro %}{{ m(1, 2, 3, x=4) }}",
     "(2, 3){'x': 4}", NULL},
    {"macro_recursion",
     "{% macro r(k) %}{% if k > 0 %}{{ k }}{{ r(k - 1) }}{% endif %}{% endmacro %}{{ r(5) }}",
     "54321", NULL},
    {"call_block",
     "{% macro m() %}<{{ caller(5) }}>{% endmacro %}{% call(v) m() %}inner{{ v }}{% endcall %}",
     "<inner5>", NULL},
    {"set_block_filter_block",
     "{% set x | trim | upper %}  block {{ n }}  {% endset %}[{{ x }}]{% filter upper %}hello {{ s "
     "}}{% endfilter %}",
     "[BLOCK 5]HELLO HELLO WORLD", NULL},
    {"with_block", "{% with a = 1, b = 2 %}{{ a + b }}{% endwith %}[{{ a }}]", "3[]", NULL},
    {"str_methods",
     "{{ s.upper() }}{{ s.lower() }}{{ s.title() }}{{ s.split() }}{{ s.split(\"o\", 1) }}{{ "
     "s.rsplit(\"o\", 1) }}{{ \"xxaxx\".strip(\"x\") }}{{ s.startswith(\"He\") }}{{ "
     "s.endswith((\"x\", \"ld\")) }}{{ s.find(\"o\") }}{{ s.count(\"o\") }}{{ s.replace(\"o\", "
     "\"0\", 1) }}{{ \"-\".join([\"a\", \"b\"]) }}{{ \"{} and {}\".format(1, \"b\") }}",
     "HELLO WORLDhello worldHello World['Hello', 'World']['Hell', ' World']['Hello W', "
     "'rld']aTrueTrue42Hell0 Worlda-b1 and b",
     NULL},
    {"percent_format",
     "{{ \"%s=%d %05.2f %-4s|%x\" % (\"a\", 3, 2.5, \"x\", 255) }}{{ \"%(a)s-%(b)s\" % d }}",
     "a=3 02.50 x   |ff1-2", NULL},
    {"containment",
     "{{ \"a\" in s }}{{ \"z\" not in s }}{{ 1 in l }}{{ \"a\" in d }}{{ \"q\" in d }}{{ \"x\" in "
     "nope }}",
     "FalseTrueTrueTrueFalseFalse", NULL},
    {"tests",
     "{{ n is defined }}{{ q is undefined }}{{ none is none }}{{ n is number }}{{ f is float }}{{ "
     "n is integer }}{{ s is string }}{{ d is mapping }}{{ l is iterable }}{{ n is iterable }}{{ l "
     "is sequence }}{{ true is boolean }}{{ n is odd }}{{ n is divisibleby 5 }}{{ n is eq 5 }}{{ n "
     "is lt 6 }}{{ n is in [5] }}{{ \"abc\" is lower }}{{ tools is none }}{{ tools is not none }}",
     "TrueTrueTrueTrueTrueTrueTrueTrueTrueFalseTrueTrueTrueTrueTrueTrueTrueTrueTrueFalse", NULL},
    {"select_map",
     "{{ messages|selectattr(\"role\", \"equalto\", \"user\")|map(attribute=\"content\")|list }}{{ "
     "messages|rejectattr(\"content\")|list|length }}{{ "
     "messages|map(attribute=\"role\")|join(\",\") }}{{ l|select(\"odd\")|list }}{{ "
     "l|map(\"string\")|list }}{{ [1,1,2,\"A\",\"a\"]|unique|list }}{{ "
     "tools|selectattr(\"x\")|list }}",
     "['Hi  there\\n']1system,user,assistant[3, 1]['3', '1', '2'][1, 2, 'A'][]", NULL},
    {"sort_minmax",
     "{{ l|sort }}{{ l|sort(reverse=true) }}{{ [\"b\", \"A\", \"a\"]|sort }}{{ [{\"n\": 2}, "
     "{\"n\": 1}]|sort(attribute=\"n\") }}{{ l|max }}{{ l|min }}{{ l|sum }}{{ l|first }}{{ l|last "
     "}}{{ d|dictsort }}{{ d|dictsort(by=\"value\", reverse=true)|first }}",
     NULL,
     "TypeError:"}, /* TypeError: '<' not supported between instances of 'int' and 'NoneType' */
    {"tojson",
     "{{ d|tojson }}|{{ d|tojson(indent=2) }}|{{ l|tojson(separators=(\",\", \":\")) }}|{{ "
     "d|tojson(sort_keys=true) }}|{{ u|tojson }}|{{ \"\\t\\x01\\\"\"|tojson }}|{{ [1.0, 1e20, "
     "0.1]|tojson }}",
     "{\"b\": 2, \"a\": 1, \"c\": null}|{\n  \"b\": 2,\n  \"a\": 1,\n  \"c\": "
     "null\n}|[3,1,2]|{\"a\": 1, \"b\": 2, \"c\": null}|\"\303\234n\303\257c\303\266d\303\251 "
     "\302\275 \346\227\245\346\234\254\"|\"\\t\\u0001\\\"\"|[1.0, 1e+20, 0.1]",
     NULL},
    {"tojson_messages", "{{ messages|tojson }}",
     "[{\"role\": \"system\", \"content\": \"Sys <b> & 'q'\"}, {\"role\": \"user\", \"content\": "
     "\"Hi  there\\n\"}, {\"role\": \"assistant\", \"content\": null, \"tool_calls\": "
     "[{\"function\": {\"name\": \"f\", \"arguments\": {\"a\": 1, \"b\": [1, 2.5, null, "
     "true]}}}]}]",
     NULL},
    {"string_filters",
     "{{ \"a\\nb\\n\"|indent(2) }}|{{ \"a\\nb\"|indent(2, true) }}|{{ \"a\\n\\nb\"|indent }}|{{ "
     "\"hello world\"|title }}|{{ \"hELLO\"|capitalize }}|{{ \"abc\"|center(9) }}|{{ \"hello "
     "world\"|truncate(9) }}|{{ \"hello world foo\"|wordcount }}|{{ \"abc\"|reverse }}|{{ u|upper "
     "}}|{{ u|length }}",
     "a\n  b\n|  a\n  b|a\n\n    b|Hello World|Hello|   abc   |hello "
     "world|3|cba|\303\234N\303\217C\303\226D\303\211 \302\275 \346\227\245\346\234\254|12",
     NULL},
    {"number_filters",
     "{{ 3.7|int }}{{ \"42\"|int }}{{ \"4.2\"|int }}{{ \"x\"|int }}{{ \"x\"|int(7) }}{{ "
     "\"3.5\"|float }}{{ 3|float }}{{ -3|abs }}{{ 2.5|round }}{{ 3.5|round }}{{ 3.14159|round(2) "
     "}}{{ 3.7|round(0, \"floor\") }}{{ 7|round }}",
     "3424073.53.032.04.03.143.07", NULL},
    {"default_filter",
     "{{ q|default(\"dflt\") }}{{ \"\"|default(\"dflt\") }}{{ \"\"|default(\"dflt\", true) }}{{ "
     "none|default(\"x\") }}{{ q|d(\"y\") }}",
     "dfltdfltNoney", NULL},
    {"markup",
     "{{ \"<a href='x'>&</a>\"|escape }}{{ \"a\"|safe + \"<\" }}{{ \"<\" + \"a\"|safe }}{{ \"<b>\" "
     "~ \"x\"|safe }}",
     "&lt;a href=&#39;x&#39;&gt;&amp;&lt;/a&gt;a&lt;&lt;a<b>x", NULL},
    {"batch_list",
     "{{ l|batch(2)|list }}{{ l|batch(2, 0)|list }}{{ \"xy\"|list }}{{ range(1, 10, 3)|list }}{{ "
     "dict(a=1, b=2) }}{{ d|items|list }}",
     "[[3, 1], [2]][[3, 1], [2, 0]]['x', 'y'][1, 4, 7]{'a': 1, 'b': 2}[('b', 2), ('a', 1), ('c', "
     "None)]",
     NULL},
    {"nested_access",
     "{{ nested.x.y[0].k }}{{ nested[\"x\"][\"y\"][0][\"k\"] }}{{ nested.x.y.0.k }}{{ "
     "messages[2].tool_calls[0].function.arguments.b[1] }}",
     "vvv2.5", NULL},
    {"comparisons",
     "{{ 1 < 2 < 3 }}{{ 3 > 2 > 5 }}{{ 1 == 1.0 }}{{ true == 1 }}{{ \"a\" < \"b\" }}{{ [1, 2] < "
     "[1, 3] }}{{ q == q }}{{ q == none }}",
     "TrueFalseTrueTrueTrueTrueTrueFalse", NULL},
    {"dict_methods",
     "{{ d.get(\"a\") }}{{ d.get(\"zz\", 9) }}{{ d.get(\"zz\") }}{{ d.keys()|list }}{{ "
     "d.values()|list }}{% set d2 = {\"items\": 5} %}{{ d2[\"items\"] }}",
     "19None['b', 'a', 'c'][2, 1, None]5", NULL},
    {"strftime_now", "{{ strftime_now(\"%d %b %Y %H:%M\") }}", "15 Jan 2026 12:00", NULL},
    {"ws_lstrip_trim", "  {% if true %}\n    x\n  {% endif %}\n  {%+ if true %}y{% endif %}\n  z",
     "    x\n  y  z", NULL},
    {"ws_minus",
     "a {#- comment -#} b {# c #}\nd\nline1\n  {{ n }}\n    {%- if n %} yes {% endif -%}\n  tail\n",
     "ab d\nline1\n  5 yes tail", NULL},
    {"ws_raw",
     "{% raw %}{{ not }}{% endraw %}|{%- raw -%}  {{x}}  {%- endraw -%}|\n  {% raw %}\n  a\n  {% "
     "endraw %}\nb",
     "{{ not }}|{{x}}|\n\n  a\nb", NULL},
    {"ws_crlf_trailing", "text\r\nmore\r\n{% if true %}\r\nx\r\n{% endif %}\n", "text\nmore\nx\n",
     NULL},
    {"ws_plus_end", "x {%- if true +%}\n  y{% endif %}", "x\n  y", NULL},
    {"ws_elif", "{% if n > 9 %}\nA\n{% elif f %}\nB\n{% else %}\nC\n{% endif %}\n", "B\n", NULL},
    {"braces_in_expr", "{{ \"{{\" }}{{ \"}}\" }}{{ {\"a\": {\"b\": 1}}}}", "{{}}{'a': {'b': 1}}",
     NULL},
    {"literals",
     "{{ \"a\" \"b\" 'c' }}{{ 1_000 }}{{ 1.5e3 }}{{ \"\\u00e9\\x41\\101\" }}{{ True }}{{ None }}{{ "
     "False }}",
     "abc10001500.0\303\251AATrueNoneFalse", NULL},
    {"groupby",
     "{% for g in messages|groupby(\"role\") %}{{ g.grouper }}:{{ g.list|length }};{% endfor %}{% "
     "for k, v in [{\"a\": \"x\"}, {\"a\": \"X\"}]|groupby(\"a\") %}{{ k }}{{ v|length }}{% endfor "
     "%}",
     "assistant:1;system:1;user:1;x2", NULL},
    {"unknown_filter_in_if_is_soft",
     "{% if false %}{{ x|nosuch }}{% endif %}{{ 1 if true else x|nosuch }}ok", "1ok", NULL},
    {"e_unknown_filter_compile", "{% for i in [] %}{{ i|nosuch }}{% endfor %}", NULL,
     "TemplateAssertionError:"}, /* TemplateAssertionError: No filter named 'nosuch'. */
    {"e_unknown_test_compile", "{% macro m() %}{{ 1 is nosuch }}{% endmacro %}", NULL,
     "TemplateAssertionError:"}, /* TemplateAssertionError: No test named 'nosuch'. */
    {"const_slice_folds",
     "[{{ true[1:] }}][{{ (1, 2)[1:] }}]{{ 3.0 is odd }}{{ 2.5 is even }}{{ \"x\" % [1] }}{{ [1, "
     "2, 3]|truncate(5) }}{{ {\"a\": 1}|last }}",
     "[][(2,)]TrueFalsex[1, 2, 3]a", NULL},
    {"e_var_slice", "{{ tools[1:] }}", NULL,
     "TypeError:"}, /* TypeError: 'NoneType' object is not subscriptable */
    {"e_percent_extra", "{{ \"ab\" % 5 }}", NULL,
     "TypeError:"}, /* TypeError: not all arguments converted during string formatting */
    {"e_raise", "{{ raise_exception(\"boom\") }}", NULL,
     "TemplateError:"}, /* TemplateError: boom */
    {"e_undef_attr", "{{ d.zz.yy }}", NULL,
     "UndefinedError:"}, /* UndefinedError: 'dict object' has no attribute 'zz' */
    {"e_undef_add", "{{ q + 1 }}", NULL, "UndefinedError:"}, /* UndefinedError: 'q' is undefined */
    {"e_concat_dict", "{{ \"a\" + d }}", NULL,
     "TypeError:"}, /* TypeError: can only concatenate str (not "dict") to str */
    {"e_iter_none", "{% for t in tools %}{% endfor %}", NULL,
     "TypeError:"}, /* TypeError: 'NoneType' object is not iterable */
    {"e_append", "{{ l.append(4) }}", NULL,
     "SecurityError:"}, /* SecurityError: access to attribute 'append' of 'list' object is unsafe.
                         */
    {"e_update", "{{ d.update({}) }}", NULL,
     "SecurityError:"}, /* SecurityError: access to attribute 'update' of 'dict' object is unsafe.
                         */
    {"e_tojson_gen", "{{ l|map(\"string\")|tojson }}", NULL,
     "TypeError:"}, /* TypeError: Object of type generator is not JSON serializable */
    {"e_tojson_undef", "{{ q|tojson }}", NULL,
     "TypeError:"}, /* TypeError: Object of type Undefined is not JSON serializable */
    {"e_ns_assign", "{% set foo = 1 %}{% set foo.bar = 2 %}", NULL,
     "TemplateRuntimeError:"}, /* TemplateRuntimeError: cannot assign attribute on non-namespace
                                  object */
    {"e_range", "{{ range(1000000)|length }}", NULL,
     "OverflowError:"}, /* OverflowError: Range too big. The sandbox blocks ranges larger than
                           MAX_RANGE (100000). */
    {"e_divzero", "{{ 10 // 0 }}", NULL,
     "ZeroDivisionError:"}, /* ZeroDivisionError: integer division or modulo by zero */
    {"e_compare", "{{ \"a\" < 1 }}", NULL,
     "TypeError:"}, /* TypeError: '<' not supported between instances of 'str' and 'int' */
    {"e_unpack", "{% for a, b in [[1]] %}{% endfor %}", NULL,
     "ValueError:"}, /* ValueError: not enough values to unpack (expected 2, got 1) */
    {"e_macro_args", "{% macro m(a) %}{% endmacro %}{{ m(1, 2) }}", NULL,
     "TypeError:"}, /* TypeError: macro 'm' takes not more than 1 argument(s) */
    {"e_len_int", "{{ n|length }}", NULL,
     "TypeError:"}, /* TypeError: object of type 'int' has no len() */
    {"e_call_str", "{{ s() }}", NULL, "TypeError:"}, /* TypeError: 'str' object is not callable */
    {"e_unknown_filter", "{{ s|nosuch }}", NULL,
     "TemplateAssertionError:"}, /* TemplateAssertionError: No filter named 'nosuch'. */
    {"e_syntax_tag", "{% if true %}x", NULL,
     "TemplateSyntaxError:"}, /* TemplateSyntaxError: Unexpected end of template. Jinja was looking
                                 for the following tags: */
    {"e_syntax_unknown_tag", "{% include \"x\" %}", NULL,
     "TemplateSyntaxError:"}, /* jinja2: TypeError: no loader (include is not supported) */
    {"e_syntax_expr", "{{ 1 + }}", NULL,
     "TemplateSyntaxError:"}, /* TemplateSyntaxError: unexpected 'end of print statement' */
    {"e_syntax_unclosed", "{{ \"abc }}", NULL,
     "TemplateSyntaxError:"}, /* TemplateSyntaxError: unexpected char '"' at 3 */
};
static const char golden_ctx[] =
    "{\"messages\": [{\"role\": \"system\", \"content\": \"Sys <b> & 'q'\"}, {\"role\": \"user\", "
    "\"content\": \"Hi  there\\n\"}, {\"role\": \"assistant\", \"content\": null, \"tool_calls\": "
    "[{\"function\": {\"name\": \"f\", \"arguments\": {\"a\": 1, \"b\": [1, 2.5, null, "
    "true]}}}]}], \"tools\": null, \"n\": 5, \"f\": 2.5, \"s\": \"Hello World\", \"l\": [3, 1, 2], "
    "\"d\": {\"b\": 2, \"a\": 1, \"c\": null}, \"e\": \"\", \"u\": "
    "\"\303\234n\303\257c\303\266d\303\251 \302\275 \346\227\245\346\234\254\", \"nested\": "
    "{\"x\": {\"y\": [{\"k\": \"v\"}]}}}";

/* Renders src with ctx (JSON text); returns the status, output in out. */
static int render(const char *src, const char *ctx_json, buf *out, char *err, size_t err_size) {
    chat_template *t = NULL;
    int rc = chat_template_parse(src, strlen(src), &t, err, err_size);
    if (rc) return rc;
    json_error_t jerr;
    json_t *ctx = json_loads(ctx_json, 0, &jerr);
    cr_assert_not_null(ctx, "bad test context: %s", jerr.text);
    rc = chat_template_render_at(t, ctx, NOW_S, out, err, err_size);
    json_decref(ctx);
    chat_template_free(t);
    return rc;
}

Test(template, goldens_match_jinja2) {
    size_t bad = 0;
    for (size_t i = 0; i < sizeof goldens / sizeof goldens[0]; i++) {
        const struct golden *g = &goldens[i];
        buf out = BUF_INIT;
        char err[512] = "";
        int rc = render(g->src, golden_ctx, &out, err, sizeof err);
        if (g->want) {
            if (rc || strcmp(out.data ? out.data : "", g->want)) {
                cr_log_error("%s: want [%s] got [%s] (rc %d: %s)", g->name, g->want,
                             out.data ? out.data : "", rc, err);
                bad++;
            }
        } else if (rc == 0 || strncmp(err, g->want_err, strlen(g->want_err))) {
            cr_log_error("%s: want error %s, got rc %d [%s]", g->name, g->want_err, rc, err);
            bad++;
        }
        buf_free(&out);
    }
    cr_assert_eq(bad, 0, "%zu golden(s) differ", bad);
}

static void expect_error(const char *src, const char *ctx, const char *want) {
    buf out = BUF_INIT;
    char err[512] = "";
    int rc = render(src, ctx, &out, err, sizeof err);
    cr_assert_neq(rc, 0, "expected an error for %s", src);
    cr_assert(strstr(err, want) != NULL, "error [%s] lacks [%s]", err, want);
    cr_assert_eq(out.len, 0, "output must be untouched on error");
    buf_free(&out);
}

static void expect_text(const char *src, const char *ctx, const char *want) {
    buf out = BUF_INIT;
    char err[512] = "";
    int rc = render(src, ctx, &out, err, sizeof err);
    cr_assert_eq(rc, 0, "render failed: %s", err);
    cr_assert_str_eq(out.data ? out.data : "", want);
    buf_free(&out);
}

Test(template, error_messages_name_the_thing) {
    expect_error("{{ raise_exception('Conversation roles must alternate') }}", "{}",
                 "TemplateError: Conversation roles must alternate");
    expect_error("{% for t in tools %}{% endfor %}", "{\"tools\": null}",
                 "TypeError: 'NoneType' object is not iterable");
    expect_error("{{ tool.description.x }}", "{\"tool\": {}}",
                 "UndefinedError: 'dict object' has no attribute 'description'");
    expect_error("{{ '[' + args + ']' }}", "{\"args\": {\"a\": 1}}",
                 "TypeError: can only concatenate str (not \"dict\") to str");
    expect_error("{{ x|nosuch }}", "{}", "No filter named 'nosuch'");
    expect_error("{% if x is nosuch %}{% endif %}", "{}", "No test named 'nosuch'");
}

Test(template, syntax_errors_give_the_line) {
    chat_template *t = NULL;
    char err[256];
    const char *src = "line one\n{% if x %}\n{{ 1 + }}\n{% endif %}";
    cr_assert_neq(chat_template_parse(src, strlen(src), &t, err, sizeof err), 0);
    cr_assert_null(t);
    cr_assert(strstr(err, "TemplateSyntaxError") && strstr(err, "line 3"), "%s", err);
    src = "{% for x in y %}never closed";
    cr_assert_neq(chat_template_parse(src, strlen(src), &t, err, sizeof err), 0);
    cr_assert(strstr(err, "endfor"), "%s", err);
    src = "{% include 'other.jinja' %}";
    cr_assert_neq(chat_template_parse(src, strlen(src), &t, err, sizeof err), 0);
    cr_assert(strstr(err, "unknown tag 'include'"), "%s", err);
    src = "{{ 'unterminated }}";
    cr_assert_neq(chat_template_parse(src, strlen(src), &t, err, sizeof err), 0);
    src = "{# never closed";
    cr_assert_neq(chat_template_parse(src, strlen(src), &t, err, sizeof err), 0);
}

Test(template, sandbox_bounds_loops) {
    expect_error("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
                 "{}", "loop iterations");
    expect_error("{{ range(100001)|length }}", "{}", "MAX_RANGE");
}

Test(template, sandbox_bounds_recursion) {
    expect_error("{% macro r(n) %}{{ r(n + 1) }}{% endmacro %}{{ r(0) }}", "{}", "RecursionError");
    /* expression nesting deeper than the parser allows is a syntax error, not a stack overflow */
    char src[4096] = "{{ ";
    for (int i = 0; i < 1000; i++) strcat(src, "(");
    strcat(src, "1");
    for (int i = 0; i < 1000; i++) strcat(src, ")");
    strcat(src, " }}");
    chat_template *t = NULL;
    char err[256];
    cr_assert_neq(chat_template_parse(src, strlen(src), &t, err, sizeof err), 0);
    cr_assert(strstr(err, "nesting"), "%s", err);
}

Test(template, sandbox_bounds_output_and_memory) {
    expect_error("{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s "
                 "%}{% endfor %}{{ ns.s }}",
                 "{}", "Error");
    expect_error("{{ 'x' * 1000000000 }}", "{}", "MemoryError");
    expect_error("{% for i in range(100000) %}{{ 'y' * 1000 }}{% endfor %}", "{}", "OutputError");
}

/* A replace() that outgrows the output bound fails instead of returning a
 * silently cut string (it used to give 26526862 characters here). */
Test(template, sandbox_bounds_replace) {
    expect_error("{{ ('x' * 10000000) | replace('x', 'yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy') "
                 "| length }}",
                 "{}", "OutputError");
    expect_error("{{ ('x' * 1000000).replace('', 'abcdefghijklmnopqrstuvwxyz') | length }}", "{}",
                 "OutputError");
    expect_text("{{ 'abc'.replace('b', 'XY') }}{{ 'abc' | replace('', '-') }}{{ 'aaa'.replace('a', 'b', 2) }}",
                "{}", "aXYc-a-b-c-bba");
}

Test(template, sandbox_blocks_mutation_and_internals) {
    expect_error("{{ messages.append(1) }}", "{\"messages\": []}", "SecurityError");
    expect_error("{{ d.update({'a': 1}) }}", "{\"d\": {}}", "SecurityError");
    expect_text("[{{ messages.__class__ }}][{{ ''.__class__ }}][{{ x.__globals__ }}]",
                "{\"messages\": [], \"x\": {}}", "[][][]");
    expect_text("{{ d._private }}", "{\"d\": {\"_private\": 1}}", "1");
}

Test(template, template_size_limit) {
    size_t n = (1u << 20) + 1;
    char *src = malloc(n);
    cr_assert_not_null(src);
    memset(src, 'a', n);
    chat_template *t = NULL;
    char err[256];
    cr_assert_neq(chat_template_parse(src, n, &t, err, sizeof err), 0);
    cr_assert(strstr(err, "limit"), "%s", err);
    free(src);
}

Test(template, hostile_bytes_do_not_crash) {
    const char *srcs[] = {
        "{{",           "{%",         "{#",          "{{ }}",        "{% %}",
        "{%- -%}",      "{{ [ }}",    "{{ ) }}",     "{{ a.}}",      "{{ 'a\\x }}",
        "{% for %}",    "{% set %}",  "{% macro %}", "{{ x[::0] }}", "\xff\xfe{{ 1 }}",
        "{% endfor %}", "{% else %}", "{{ 1 if }}",  "{{ a is }}",   "{{ a | }}",
        "{% raw %}"};
    for (size_t i = 0; i < sizeof srcs / sizeof srcs[0]; i++) {
        chat_template *t = NULL;
        char err[256];
        buf out = BUF_INIT;
        if (chat_template_parse(srcs[i], strlen(srcs[i]), &t, err, sizeof err) == 0) {
            json_t *ctx = json_object();
            (void)chat_template_render(t, ctx, &out, err, sizeof err);
            json_decref(ctx);
        }
        chat_template_free(t);
        buf_free(&out);
    }
    chat_template_free(NULL);
}

Test(template, chatml_default) {
    const char *ctx =
        "{\"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"},"
        " {\"role\": \"user\", \"content\": [{\"type\": \"text\", \"text\": \"Hi\"}]},"
        " {\"role\": \"assistant\", \"content\": null}], \"add_generation_prompt\": true}";
    expect_text(chat_template_default_source(), ctx,
                "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
                "<|im_start|>assistant\n<|im_end|>\n<|im_start|>assistant\n");
    expect_text(chat_template_default_source(),
                "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}]}",
                "<|im_start|>user\nx<|im_end|>\n");
}

Test(template, render_appends_and_is_repeatable) {
    chat_template *t = NULL;
    char err[256];
    const char *src = "{{ bos_token }}{{ messages|length }}";
    cr_assert_eq(chat_template_parse(src, strlen(src), &t, err, sizeof err), 0);
    json_t *ctx = json_pack("{s:s, s:[i,i]}", "bos_token", "<s>", "messages", 1, 2);
    buf out = BUF_INIT;
    buf_puts(&out, "prefix:");
    cr_assert_eq(chat_template_render(t, ctx, &out, err, sizeof err), 0);
    cr_assert_eq(chat_template_render(t, ctx, &out, err, sizeof err), 0);
    cr_assert_str_eq(out.data, "prefix:<s>2<s>2");
    buf_free(&out);
    json_decref(ctx);
    chat_template_free(t);
}

struct thread_arg {
    const chat_template *t;
    const json_t *ctx;
    int ok;
};

static void *render_many(void *p) {
    struct thread_arg *a = p;
    a->ok = 1;
    for (int i = 0; i < 200; i++) {
        buf out = BUF_INIT;
        char err[256];
        if (chat_template_render_at(a->t, a->ctx, NOW_S, &out, err, sizeof err) ||
            strcmp(out.data, "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"))
            a->ok = 0;
        buf_free(&out);
    }
    return NULL;
}

Test(template, one_template_renders_on_many_threads) {
    chat_template *t = NULL;
    char err[256];
    const char *src = chat_template_default_source();
    cr_assert_eq(chat_template_parse(src, strlen(src), &t, err, sizeof err), 0);
    json_t *ctx = json_loads("{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], "
                             "\"add_generation_prompt\": true}",
                             0, NULL);
    pthread_t th[4];
    struct thread_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (struct thread_arg){t, ctx, 0};
        pthread_create(&th[i], NULL, render_many, &args[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        cr_assert(args[i].ok, "thread %d rendered wrongly", i);
    }
    json_decref(ctx);
    chat_template_free(t);
}
