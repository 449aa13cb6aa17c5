// Error statuses and shapes ({"error":{"message","type","param","code"}}):
// 400 (bad JSON, wrong types, named field), 401 (API key), 404 (route,
// model), 405, 413 (--max-body-bytes), 429 (--max-queue, with Retry-After),
// CORS preflight and headers; never a 500 for a client mistake.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startServer, MODEL_NAME, post, waitIdle, sleep } from './lib/server.mjs';

let srv;
const KEY = 'sk-test-123';

before(async () => {
  srv = await startServer({
    args: ['--api-key', KEY, '--max-body-bytes', '4096', '--allowed-origins', 'https://app.example',
      '--max-num-seqs', '1', '--max-queue', '4'],
  });
});

after(async () => {
  const r = await srv.stop();
  assert.equal(r.code, 0, srv.stderr.slice(-2000));
});

const auth = { authorization: `Bearer ${KEY}` };

function assertError(r, status, param) {
  assert.equal(r.status, status, r.text);
  assert.ok(r.json && r.json.error, `error object in ${r.text}`);
  const e = r.json.error;
  assert.equal(typeof e.message, 'string');
  assert.ok(e.message.length > 0);
  assert.equal(typeof e.type, 'string');
  assert.ok('param' in e && 'code' in e, r.text);
  if (param !== undefined) assert.equal(e.param, param, r.text);
}

test('400: malformed JSON, non-object bodies, empty body', async () => {
  assertError(await post(srv, '/v1/completions', '{"prompt": "x",', auth), 400, null);
  assertError(await post(srv, '/v1/completions', '[1,2]', auth), 400, null);
  assertError(await post(srv, '/v1/completions', '', auth), 400, null);
  assertError(await post(srv, '/v1/chat/completions', 'not json', auth), 400, null);
});

test('400: wrong types and ranges name the field', async () => {
  const cases = [
    ['/v1/completions', { prompt: 5 }, 'prompt'],
    ['/v1/completions', {}, 'prompt'],
    ['/v1/completions', { prompt: [] }, 'prompt'],
    ['/v1/completions', { prompt: [1, -2] }, 'prompt'],
    ['/v1/completions', { prompt: [999999] }, 'prompt'],
    ['/v1/completions', { prompt: 'x', max_tokens: 'ten' }, 'max_tokens'],
    ['/v1/completions', { prompt: 'x', max_tokens: 0 }, 'max_tokens'],
    ['/v1/completions', { prompt: 'x', temperature: -1 }, 'temperature'],
    ['/v1/completions', { prompt: 'x', temperature: '0.5' }, 'temperature'],
    ['/v1/completions', { prompt: 'x', top_p: 1.5 }, 'top_p'],
    ['/v1/completions', { prompt: 'x', top_k: 1.5 }, 'top_k'],
    ['/v1/completions', { prompt: 'x', n: 0 }, 'n'],
    ['/v1/completions', { prompt: 'x', stop: 3 }, 'stop'],
    ['/v1/completions', { prompt: 'x', stop: ['a', 4] }, 'stop'],
    ['/v1/completions', { prompt: 'x', stream: 'yes' }, 'stream'],
    ['/v1/completions', { prompt: 'x', stream_options: { include_usage: true } }, 'stream_options'],
    ['/v1/completions', { prompt: 'x', logprobs: true }, 'logprobs'],
    ['/v1/completions', { prompt: 'x', logprobs: 50 }, 'logprobs'],
    ['/v1/completions', { prompt: 'x', logit_bias: { abc: 1 } }, 'logit_bias'],
    ['/v1/completions', { prompt: 'x', logit_bias: { 5: 500 } }, 'logit_bias'],
    ['/v1/completions', { prompt: 'x', logit_bias: { 100000: 1 } }, 'logit_bias'],
    ['/v1/completions', { prompt: 'x', seed: 's' }, 'seed'],
    ['/v1/completions', { prompt: 'x', presence_penalty: 3 }, 'presence_penalty'],
    ['/v1/completions', { prompt: 'x', ignore_eos: 1 }, 'ignore_eos'],
    ['/v1/completions', { prompt: 'x', user: 7 }, 'user'],
    ['/v1/completions', { prompt: 'x', model: 7 }, 'model'],
    ['/v1/chat/completions', { messages: 'hi' }, 'messages'],
    ['/v1/chat/completions', { messages: [] }, 'messages'],
    ['/v1/chat/completions', { messages: [{ content: 'no role' }] }, 'messages'],
    ['/v1/chat/completions', { messages: [{ role: 'user', content: 5 }] }, 'messages'],
    ['/v1/chat/completions', { messages: [{ role: 'user', content: 'x' }], logprobs: 2 }, 'logprobs'],
    ['/v1/chat/completions', { messages: [{ role: 'user', content: 'x' }], top_logprobs: 2 }, 'top_logprobs'],
    ['/v1/chat/completions', { messages: [{ role: 'user', content: 'x' }], max_completion_tokens: -1 },
      'max_completion_tokens'],
  ];
  for (const [route, body, param] of cases) {
    const r = await post(srv, route, body, auth);
    assertError(r, 400, param);
    assert.equal(r.json.error.type, 'invalid_request_error');
  }
});

test('400: the prompt plus max_tokens beyond the context', async () => {
  const r = await post(srv, '/v1/completions', { prompt: 'Once', max_tokens: 1 << 20 }, auth);
  assertError(r, 400);
  assert.equal(r.json.error.code, 'context_length_exceeded');
});

test('unknown fields are ignored', async () => {
  const r = await post(srv, '/v1/completions', {
    prompt: 'Once', max_tokens: 2, frobnicate: { deep: [1, 2] }, best_of: 1, suffix: null,
  }, auth);
  assert.equal(r.status, 200, r.text);
});

test('401: missing or wrong API key; the SDK sees AuthenticationError', async () => {
  const none = await post(srv, '/v1/completions', { prompt: 'x' });
  assertError(none, 401);
  assert.equal(none.json.error.code, 'invalid_api_key');
  assertError(await post(srv, '/v1/completions', { prompt: 'x' }, { authorization: 'Bearer nope' }), 401);
  assertError(await post(srv, '/v1/completions', { prompt: 'x' }, { authorization: KEY }), 401);
  const r = await fetch(`${srv.url}/v1/models`);
  assert.equal(r.status, 401);
  const bad = new OpenAI({ baseURL: `${srv.url}/v1`, apiKey: 'wrong', maxRetries: 0 });
  await assert.rejects(bad.models.list(), (e) => e instanceof OpenAI.AuthenticationError);
  const good = new OpenAI({ baseURL: `${srv.url}/v1`, apiKey: KEY, maxRetries: 0 });
  assert.equal((await good.models.list()).data[0].id, MODEL_NAME);
  // Liveness and readiness stay open for probes.
  assert.equal((await fetch(`${srv.url}/health`)).status, 200);
  assert.equal((await fetch(`${srv.url}/ready`)).status, 200);
});

test('404: unknown route and unknown model; 405: wrong method', async () => {
  const r = await fetch(`${srv.url}/v2/nothing`);
  assert.equal(r.status, 404);
  assert.ok((await r.json()).error);
  const m = await post(srv, '/v1/completions', { model: 'gpt-4', prompt: 'x' }, auth);
  assertError(m, 404, 'model');
  assert.equal(m.json.error.code, 'model_not_found');
  const c = await post(srv, '/v1/chat/completions', { model: 'nope', messages: [{ role: 'user', content: 'x' }] }, auth);
  assertError(c, 404, 'model');
  const g = await fetch(`${srv.url}/v1/models/other`, { headers: auth });
  assert.equal(g.status, 404);
  const w = await fetch(`${srv.url}/v1/completions`, { headers: auth });
  assert.equal(w.status, 405);
  const client = new OpenAI({ baseURL: `${srv.url}/v1`, apiKey: KEY, maxRetries: 0 });
  await assert.rejects(client.completions.create({ model: 'missing', prompt: 'x' }),
    (e) => e instanceof OpenAI.NotFoundError);
});

test('413: a body over --max-body-bytes', async () => {
  const r = await post(srv, '/v1/completions', { prompt: 'x'.repeat(10000) }, auth);
  assertError(r, 413);
  // The server is still fine afterwards.
  assert.equal((await fetch(`${srv.url}/health`)).status, 200);
});

test('429: the waiting queue is full (--max-queue 4), with Retry-After', async () => {
  // --max-num-seqs 1: one request with n=4 keeps one sequence running and
  // three waiting for several seconds; a second one (n=1) fills the queue.
  const long = { prompt: 'Once upon a time', max_tokens: 2000, ignore_eos: true, temperature: 0 };
  const ctrl = new AbortController();
  const open = (n) => fetch(`${srv.url}/v1/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json', ...auth },
    body: JSON.stringify({ ...long, n, stream: true }), signal: ctrl.signal,
  });
  const responses = [await open(4)];
  for (let i = 0; i < 500 && (await (await fetch(`${srv.url}/ready`)).json()).waiting !== 3; i++) await sleep(10);
  responses.push(await open(1));
  for (const r of responses) assert.equal(r.status, 200);
  // Wait until the engine has taken it (one sequence running, the rest waiting).
  let rd = null;
  for (let i = 0; i < 500; i++) {
    rd = await fetch(`${srv.url}/ready`);
    if (rd.status === 503) break;
    await sleep(10);
  }
  assert.equal(rd.status, 503);
  assert.equal((await rd.json()).status, 'queue_full');
  const refused = await post(srv, '/v1/completions', { ...long, max_tokens: 4 }, auth);
  assertError(refused, 429);
  assert.equal(refused.json.error.code, 'queue_full');
  assert.ok(Number(refused.headers.get('retry-after')) >= 1);
  ctrl.abort();
  for (const r of responses) r.body?.cancel().catch(() => {});
  const idle = await waitIdle(srv);
  assert.equal(idle.kv_blocks_free, idle.kv_blocks_total, JSON.stringify(idle));
  assert.equal((await fetch(`${srv.url}/ready`)).status, 200);
});

test('CORS: preflight and allowed origin headers; other origins get none', async () => {
  const pre = await fetch(`${srv.url}/v1/chat/completions`, {
    method: 'OPTIONS',
    headers: { origin: 'https://app.example', 'access-control-request-method': 'POST',
      'access-control-request-headers': 'authorization, content-type' },
  });
  assert.equal(pre.status, 204);
  assert.equal(pre.headers.get('access-control-allow-origin'), 'https://app.example');
  assert.match(pre.headers.get('access-control-allow-methods'), /POST/);
  assert.match(pre.headers.get('access-control-allow-headers'), /authorization/i);
  const r = await fetch(`${srv.url}/health`, { headers: { origin: 'https://app.example' } });
  assert.equal(r.headers.get('access-control-allow-origin'), 'https://app.example');
  const other = await fetch(`${srv.url}/health`, { headers: { origin: 'https://evil.example' } });
  assert.equal(other.headers.get('access-control-allow-origin'), null);
  const preOther = await fetch(`${srv.url}/v1/completions`, {
    method: 'OPTIONS', headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' },
  });
  assert.equal(preOther.headers.get('access-control-allow-origin'), null);
});
