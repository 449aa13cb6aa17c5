#!/usr/bin/env bash
# test_chat_template.sh - renders every row of tests/data/templates/rendered.jsonl
# (HF transformers / jinja2 reference renderings) with `inferd chat-template`
# and requires byte-identical output, or a failure (exit 1, message on stderr)
# exactly where the reference failed. Also checks llamacpp_expected.jsonl rows
# that plain jinja2 reproduces. Prints one line per row and a summary.
# Env: INFERD_BIN (default build/inferd), CHAT_TEMPLATE_VERBOSE=1 for diffs.
set -u
BIN=${INFERD_BIN:-build/inferd}
DATA=tests/data/templates
if [ ! -x "$BIN" ]; then echo "test_chat_template: $BIN not built" >&2; exit 1; fi
if ! command -v node >/dev/null; then echo "test_chat_template: SKIP (node not installed)"; exit 0; fi
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
BIN="$BIN" DATA="$DATA" TMP="$TMP" node --input-type=module - <<'JS'
import { readFileSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
const { BIN, DATA, TMP } = process.env;
const verbose = process.env.CHAT_TEMPLATE_VERBOSE === '1';
let pass = 0, fail = 0;
function run(name, templatePath, ctx, want, wantError) {
  const ctxPath = `${TMP}/ctx.json`;
  writeFileSync(ctxPath, JSON.stringify(ctx));
  const args = ['chat-template', '--context', ctxPath];
  if (templatePath) args.push('--template', templatePath);
  const r = spawnSync(BIN, args, { encoding: 'buffer', maxBuffer: 1 << 26 });
  const out = r.stdout.toString('utf8'), err = r.stderr.toString('utf8').trim();
  let ok, why = '';
  if (wantError) {
    ok = r.status === 1 && out === '' && err.length > 0;
    why = ok ? `failed as expected: ${err}` : `expected failure (${want}), got status ${r.status}`;
  } else {
    ok = r.status === 0 && out === want;
    if (!ok) why = r.status !== 0 ? `status ${r.status}: ${err}` : 'output differs';
  }
  if (ok) pass++; else fail++;
  console.log(`${ok ? 'PASS' : 'FAIL'} ${name}${ok && !wantError ? '' : ' - ' + why}`);
  if (!ok && verbose && !wantError && r.status === 0) {
    console.log('--- want\n' + JSON.stringify(want) + '\n--- got\n' + JSON.stringify(out));
  }
}
const rows = readFileSync(`${DATA}/rendered.jsonl`, 'utf8').split('\n').filter(Boolean).map(JSON.parse);
for (const row of rows) {
  const ctx = { messages: row.messages, tools: row.tools ?? null, documents: null,
                add_generation_prompt: row.add_generation_prompt, eos_token: row.eos_token };
  if (row.bos_token !== null && row.bos_token !== undefined) ctx.bos_token = row.bos_token;
  Object.assign(ctx, row.extra_context ?? {});
  const isErr = Object.prototype.hasOwnProperty.call(row, 'error');
  run(`rendered ${row.template} / ${row.case}`, `${DATA}/${row.template}`, ctx, isErr ? row.error : row.rendered, isErr);
}
const renderedPass = pass, renderedTotal = rows.length;
/* llama.cpp's test conversation, for the rows plain jinja2 reproduces. */
const convo = [
  { role: 'system', content: 'You are a helpful assistant' }, { role: 'user', content: 'Hello' },
  { role: 'assistant', content: 'Hi there' }, { role: 'user', content: 'Who are you' },
  { role: 'assistant', content: '   I am an assistant   ' }, { role: 'user', content: 'Another question' }];
let lcTotal = 0, lcPass = 0;
for (const line of readFileSync(`${DATA}/llamacpp_expected.jsonl`, 'utf8').split('\n').filter(Boolean)) {
  const row = JSON.parse(line);
  if (!row.python_jinja2_matches_expected_jinja || !row.supported_with_jinja) continue;
  lcTotal++;
  const tpl = `${TMP}/t.jinja`;
  writeFileSync(tpl, row.template_source);
  const before = pass;
  let want = row.expected_jinja_effective;
  /* llama.cpp strips a leading bos and trailing eos; plain jinja2 matched after that strip,
     so compare the same way. */
  const ctx = { messages: convo, tools: null, documents: null, add_generation_prompt: true,
                bos_token: row.bos_token, eos_token: row.eos_token };
  const ctxPath = `${TMP}/ctx.json`;
  writeFileSync(ctxPath, JSON.stringify(ctx));
  const r = spawnSync(BIN, ['chat-template', '--template', tpl, '--context', ctxPath], { encoding: 'utf8' });
  let out = r.stdout;
  if (row.bos_token && out.startsWith(row.bos_token)) out = out.slice(row.bos_token.length);
  if (row.eos_token && out.endsWith(row.eos_token)) out = out.slice(0, -row.eos_token.length);
  const ok = r.status === 0 && out === want;
  if (ok) pass++, lcPass++; else fail++;
  console.log(`${ok ? 'PASS' : 'FAIL'} llama.cpp ${row.name}${ok ? '' : ' - ' + (r.status ? r.stderr.trim() : 'output differs')}`);
  if (!ok && verbose) console.log('--- want\n' + JSON.stringify(want) + '\n--- got\n' + JSON.stringify(out));
  void before;
}
console.log(`chat-template: rendered.jsonl ${renderedPass}/${renderedTotal} rows, llama.cpp ${lcPass}/${lcTotal} rows, ${fail} failed`);
process.exit(fail ? 1 : 0);
JS
