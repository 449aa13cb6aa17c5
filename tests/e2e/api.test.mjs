// The OpenAI-compatible API through the official openai SDK, against the real
// binary serving models/stories260K.gguf: completions and chat, streaming and
// not, include_usage, n=2, stop, logprobs, seeds, greedy output equal to
// llama.cpp's references, and the small endpoints.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import OpenAI from 'openai';
import { startServer, ROOT, MODEL_NAME, post, waitIdle } from './lib/server.mjs';

let srv;
let client;

before(async () => {
  srv = await startServer();
  client = new OpenAI({ baseURL: `${srv.url}/v1`, apiKey: 'unused', maxRetries: 0 });
});

after(async () => {
  const r = await srv.stop();
  assert.equal(r.code, 0, `exit ${JSON.stringify(r)}: ${srv.stderr.slice(-2000)}`);
});

const greedyRows = fs.readFileSync(path.join(ROOT, 'tests/data/greedy/stories260K_greedy.jsonl'), 'utf8')
  .split('\n').filter(Boolean).map((l) => JSON.parse(l));

test('GET /v1/models lists the served model', async () => {
  const models = await client.models.list();
  assert.deepEqual(models.data.map((m) => m.id), [MODEL_NAME]);
  assert.equal(models.data[0].object, 'model');
  const one = await client.models.retrieve(MODEL_NAME);
  assert.equal(one.id, MODEL_NAME);
});

test('completions: greedy output equals the llama.cpp references (temperature 0)', async () => {
  for (const row of greedyRows) {
    const r = await client.completions.create({
      model: MODEL_NAME, prompt: row.prompt, max_tokens: row.ids.length, temperature: 0,
    });
    assert.equal(r.object, 'text_completion');
    assert.equal(r.choices[0].text, row.text, `prompt ${JSON.stringify(row.prompt)}`);
    assert.equal(r.choices[0].finish_reason, row.stopped_at_eos ? 'stop' : 'length');
    assert.equal(r.usage.prompt_tokens, row.prompt_ids.length, `prompt ${JSON.stringify(row.prompt)}`);
    assert.equal(r.usage.completion_tokens, row.ids.length);
    assert.equal(r.usage.total_tokens, row.prompt_ids.length + row.ids.length);
  }
});

test('completions: token-id prompts and several prompts in one request', async () => {
  const rows = greedyRows.slice(0, 3);
  const r = await client.completions.create({
    model: MODEL_NAME, prompt: rows.map((x) => x.prompt_ids), max_tokens: 48, temperature: 0,
  });
  assert.equal(r.choices.length, 3);
  for (const c of r.choices) assert.equal(c.text, rows[c.index].text);
  const one = await client.completions.create({
    model: MODEL_NAME, prompt: rows[0].prompt_ids, max_tokens: 48, temperature: 0,
  });
  assert.equal(one.choices[0].text, rows[0].text);
});

test('completions: streaming gives the same text, then usage, then [DONE]', async () => {
  const row = greedyRows[0];
  const stream = await client.completions.create({
    model: MODEL_NAME, prompt: row.prompt, max_tokens: 48, temperature: 0, stream: true,
    stream_options: { include_usage: true },
  });
  let text = '';
  let finish = null;
  let usage = null;
  let chunks = 0;
  for await (const chunk of stream) {
    chunks++;
    if (chunk.usage) usage = chunk.usage;
    for (const c of chunk.choices) {
      text += c.text;
      if (c.finish_reason) finish = c.finish_reason;
    }
  }
  assert.ok(chunks > 10, `only ${chunks} chunks`);
  assert.equal(text, row.text);
  assert.equal(finish, 'length');
  assert.deepEqual([usage.prompt_tokens, usage.completion_tokens], [row.prompt_ids.length, 48]);
});

test('completions: raw SSE framing ends with data: [DONE]', async () => {
  const r = await fetch(`${srv.url}/v1/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ prompt: 'Once upon a time', max_tokens: 4, stream: true }),
  });
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type'), /^text\/event-stream/);
  const body = await r.text();
  assert.ok(body.endsWith('data: [DONE]\n\n'), body.slice(-100));
  for (const block of body.split('\n\n').filter(Boolean)) assert.match(block, /^data: /);
});

test('completions: echo prepends the prompt', async () => {
  const row = greedyRows[0];
  const r = await client.completions.create({
    model: MODEL_NAME, prompt: row.prompt, max_tokens: 48, temperature: 0, echo: true,
  });
  assert.equal(r.choices[0].text, row.prompt + row.text);
});

test('completions: stop strings end the text before the stop', async () => {
  const row = greedyRows[0]; // ", there was a little girl named Lily. She loved ..."
  const r = await client.completions.create({
    model: MODEL_NAME, prompt: row.prompt, max_tokens: 48, temperature: 0, stop: ['Lily'],
  });
  assert.equal(r.choices[0].text, row.text.slice(0, row.text.indexOf('Lily')));
  assert.equal(r.choices[0].finish_reason, 'stop');
  const r2 = await client.completions.create({
    model: MODEL_NAME, prompt: row.prompt, max_tokens: 48, temperature: 0, stop: 'girl',
  });
  assert.equal(r2.choices[0].text, row.text.slice(0, row.text.indexOf('girl')));
});

test('completions: logprobs (integer) give the chosen token and its alternatives', async () => {
  const row = greedyRows[0];
  const r = await client.completions.create({
    model: MODEL_NAME, prompt: row.prompt, max_tokens: 8, temperature: 0, logprobs: 3,
  });
  const lp = r.choices[0].logprobs;
  assert.equal(lp.tokens.length, 8);
  assert.equal(lp.token_logprobs.length, 8);
  assert.equal(lp.top_logprobs.length, 8);
  assert.equal(lp.tokens.join(''), row.text.slice(0, lp.tokens.join('').length));
  for (let i = 0; i < 8; i++) {
    assert.ok(lp.token_logprobs[i] <= 0);
    const alts = Object.entries(lp.top_logprobs[i]);
    assert.ok(alts.length >= 1 && alts.length <= 3, JSON.stringify(lp.top_logprobs[i]));
    const best = Math.max(...alts.map(([, v]) => v));
    assert.ok(Math.abs(best - lp.token_logprobs[i]) < 1e-4, 'greedy token is the most likely one');
  }
  assert.equal(lp.text_offset[0], 0);
});

test('completions: the same seed gives the same sample, n=2 gives two choices', async () => {
  const req = { model: MODEL_NAME, prompt: 'Once upon a time', max_tokens: 24, temperature: 1, seed: 1234 };
  const a = await client.completions.create(req);
  const b = await client.completions.create(req);
  assert.equal(a.choices[0].text, b.choices[0].text);
  const texts = new Set();
  for (const seed of [1, 2, 3, 4]) texts.add((await client.completions.create({ ...req, seed })).choices[0].text);
  assert.ok(texts.size > 1, 'different seeds give different samples');
  const two = await client.completions.create({ ...req, n: 2 });
  assert.equal(two.choices.length, 2);
  assert.deepEqual(two.choices.map((c) => c.index).sort(), [0, 1]);
  assert.equal(two.usage.completion_tokens, 48);
  const twoAgain = await client.completions.create({ ...req, n: 2 });
  assert.deepEqual(twoAgain.choices.map((c) => c.text), two.choices.map((c) => c.text));
});

test('sampling parameters reach the engine: top_k, logit_bias, penalties', async () => {
  const row = greedyRows[0];
  const base = { model: MODEL_NAME, prompt: row.prompt, max_tokens: 8 };
  // top_k 1 is greedy whatever the temperature and seed.
  const k1 = await client.completions.create({ ...base, temperature: 1.5, top_k: 1, seed: 99 });
  assert.equal(k1.choices[0].text, row.text.slice(0, k1.choices[0].text.length));
  assert.ok(k1.choices[0].text.length > 0);
  // Banning the greedy first token changes the first token.
  const banned = await client.completions.create({ ...base, temperature: 0, logit_bias: { [row.ids[0]]: -100 } });
  const lp = await client.completions.create({ ...base, temperature: 0, logit_bias: { [row.ids[0]]: -100 },
    logprobs: 1 });
  assert.notEqual(banned.choices[0].text, row.text.slice(0, banned.choices[0].text.length));
  assert.equal(lp.choices[0].text, banned.choices[0].text);
  // Accepted and applied without error.
  const pen = await client.completions.create({ ...base, temperature: 0, presence_penalty: 1.5,
    frequency_penalty: 1, repetition_penalty: 1.3, min_p: 0.05, top_p: 0.9 });
  assert.equal(pen.usage.completion_tokens, 8);
});

test('completions: n=2 streaming carries both indices to the end', async () => {
  const stream = await client.completions.create({
    model: MODEL_NAME, prompt: 'The dog', max_tokens: 10, temperature: 0.8, seed: 7, n: 2, stream: true,
    stream_options: { include_usage: true },
  });
  const text = ['', ''];
  const finish = [null, null];
  let usage = null;
  for await (const chunk of stream) {
    if (chunk.usage) usage = chunk.usage;
    for (const c of chunk.choices) {
      text[c.index] += c.text;
      if (c.finish_reason) finish[c.index] = c.finish_reason;
    }
  }
  assert.deepEqual(finish, ['length', 'length']);
  assert.equal(usage.completion_tokens, 20);
  assert.ok(text[0].length > 0 && text[1].length > 0);
});

test('chat: ChatML rendering, whole and streamed, with usage', async () => {
  const messages = [{ role: 'system', content: 'You tell stories.' }, { role: 'user', content: 'Tell me one.' }];
  const r = await client.chat.completions.create({ model: MODEL_NAME, messages, max_tokens: 16, temperature: 0 });
  assert.equal(r.object, 'chat.completion');
  assert.equal(r.choices[0].message.role, 'assistant');
  assert.equal(typeof r.choices[0].message.content, 'string');
  assert.ok(['stop', 'length'].includes(r.choices[0].finish_reason));
  // The prompt is the rendered template, tokenized with special tokens.
  const tok = await post(srv, '/tokenize', { messages });
  assert.equal(tok.status, 200);
  assert.equal(r.usage.prompt_tokens, tok.json.count);

  const stream = await client.chat.completions.create({
    model: MODEL_NAME, messages, max_tokens: 16, temperature: 0, stream: true,
    stream_options: { include_usage: true },
  });
  let text = '';
  let role = null;
  let usage = null;
  for await (const chunk of stream) {
    assert.equal(chunk.object, 'chat.completion.chunk');
    if (chunk.usage) usage = chunk.usage;
    for (const c of chunk.choices) {
      if (c.delta.role) role = c.delta.role;
      text += c.delta.content ?? '';
    }
  }
  assert.equal(role, 'assistant');
  assert.equal(text, r.choices[0].message.content);
  // cached_tokens may differ: the second request can reuse the first's prefix.
  assert.equal(usage.prompt_tokens, r.usage.prompt_tokens);
  assert.equal(usage.completion_tokens, r.usage.completion_tokens);
});

test('chat: logprobs with top_logprobs, max_completion_tokens, content parts', async () => {
  const r = await client.chat.completions.create({
    model: MODEL_NAME, temperature: 0, max_completion_tokens: 5, logprobs: true, top_logprobs: 2,
    messages: [{ role: 'user', content: [{ type: 'text', text: 'Once upon' }, { type: 'text', text: 'a time' }] }],
  });
  const content = r.choices[0].logprobs.content;
  assert.equal(r.usage.completion_tokens, 5);
  assert.equal(content.length, 5);
  for (const t of content) {
    assert.equal(typeof t.token, 'string');
    assert.ok(t.logprob <= 0);
    assert.ok(Array.isArray(t.bytes));
    assert.ok(t.top_logprobs.length >= 1 && t.top_logprobs.length <= 2);
  }
});

test('tokenize and detokenize round-trip (vLLM shapes)', async () => {
  const row = greedyRows[0];
  const t = await post(srv, '/tokenize', { model: MODEL_NAME, prompt: row.prompt });
  assert.equal(t.status, 200);
  assert.deepEqual(t.json.tokens, row.prompt_ids);
  assert.equal(t.json.count, row.prompt_ids.length);
  assert.ok(t.json.max_model_len > 0);
  const d = await post(srv, '/detokenize', { model: MODEL_NAME, tokens: row.ids });
  assert.equal(d.status, 200);
  assert.equal(d.json.prompt, row.text.replace(/^ /, ''));
});

test('health, ready, version and metrics', async () => {
  const h = await fetch(`${srv.url}/health`);
  assert.equal(h.status, 200);
  const v = await (await fetch(`${srv.url}/version`)).json();
  assert.match(v.version, /^\d+\.\d+\.\d+/);
  const idle = await waitIdle(srv);
  assert.equal(idle.status, 'ready');
  assert.equal(idle.kv_blocks_free, idle.kv_blocks_total);
  const m = await (await fetch(`${srv.url}/metrics`)).text();
  assert.match(m, /^llm_requests_total\{endpoint="\/v1\/completions",status="200"\} \d+$/m);
  assert.doesNotMatch(m, /status="0"/, 'every counted request has its status');
  assert.match(m, /^llm_kv_blocks_total \d+$/m);
  assert.match(m, /^llm_time_to_first_token_seconds_count [1-9]\d*$/m);
});
