// --chat-template FILE: the server renders messages with the given Jinja
// template (bos_token and add_generation_prompt included), and a template
// that raises is a 400 chat_template_error, not a 500.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startServer, post } from './lib/server.mjs';

let srv;
let dir;

const TEMPLATE = `{{ bos_token }}{% for m in messages %}{% if m.role == 'tool' %}{{ raise_exception('tools are not allowed') }}{% endif %}[{{ m.role | upper }}] {{ m.content }}
{% endfor %}{% if add_generation_prompt %}[ASSISTANT]{% endif %}`;

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'inferd-tmpl-'));
  fs.writeFileSync(path.join(dir, 'chat.jinja'), TEMPLATE);
  srv = await startServer({ args: ['--chat-template', path.join(dir, 'chat.jinja')] });
});

after(async () => {
  const r = await srv.stop();
  fs.rmSync(dir, { recursive: true, force: true });
  assert.equal(r.code, 0, srv.stderr.slice(-2000));
});

test('messages are rendered with --chat-template and tokenized with special tokens', async () => {
  const messages = [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Once upon a time' }];
  const viaChat = await post(srv, '/tokenize', { messages });
  assert.equal(viaChat.status, 200, viaChat.text);
  // The template writes BOS itself ("<s>", parsed as the special token), so
  // no second BOS is added; the rest is the rendered text.
  assert.ok(viaChat.json.tokens.length > 10);
  assert.equal(viaChat.json.tokens[0], 1, 'BOS parsed as the special token');
  assert.equal(viaChat.json.tokens.filter((t) => t === 1).length, 1, 'exactly one BOS');
  const back = await post(srv, '/detokenize', { tokens: viaChat.json.tokens.slice(1) });
  assert.match(back.json.prompt, /^ ?\[SYSTEM\] Be brief\.\n\[USER\] Once upon a time\n\[ASSISTANT\]$/);
  const noGen = await post(srv, '/tokenize', { messages, add_generation_prompt: false });
  assert.ok(noGen.json.count < viaChat.json.count);
  const r = await post(srv, '/v1/chat/completions', { messages, max_tokens: 3, temperature: 0 });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.usage.prompt_tokens, viaChat.json.count);
});

test('a template that raises gives 400 chat_template_error', async () => {
  const r = await post(srv, '/v1/chat/completions', {
    messages: [{ role: 'user', content: 'x' }, { role: 'tool', content: 'y' }], max_tokens: 2,
  });
  assert.equal(r.status, 400, r.text);
  assert.equal(r.json.error.code, 'chat_template_error');
  assert.equal(r.json.error.param, 'messages');
  assert.match(r.json.error.message, /tools are not allowed/);
});
