// Limits of `inferd serve` that one request must not get around: the waiting
// queue counts sequences (prompts x n) for the whole request at once; a slow
// chat template is cut off after the server's render budget (1 s) so the
// loop thread keeps answering; logprobs 0 on /v1/completions still lists
// the sampled token in top_logprobs (as vLLM does).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import OpenAI from 'openai';
import { startServer, MODEL_NAME, post, ready, waitIdle, sleep } from './lib/server.mjs';

let srv, client, dir;

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'inferd-limits-'));
  srv = await startServer({ args: ['--max-num-seqs', '1', '--max-queue', '8'] });
  client = new OpenAI({ baseURL: `${srv.url}/v1`, apiKey: 'none', maxRetries: 0 });
});

after(async () => {
  const r = await srv.stop();
  fs.rmSync(dir, { recursive: true, force: true });
  assert.equal(r.code, 0, srv.stderr.slice(-2000));
});

test('a request whose sequences can never fit --max-queue is a 400 naming n (or prompt)', async () => {
  const prompts = ['Once', 'upon', 'a'];
  await assert.rejects(client.completions.create({ model: MODEL_NAME, prompt: prompts, n: 3, max_tokens: 2 }),
    (e) => e.status === 400 && e.param === 'n' && /9 sequences.*8/.test(e.message));
  const nine = Array.from({ length: 9 }, (_, i) => `p${i}`);
  const r = await post(srv, '/v1/completions', { prompt: nine, max_tokens: 2 });
  assert.equal(r.status, 400, r.text);
  assert.equal(r.json.error.param, 'prompt');
  const idle = await waitIdle(srv);
  assert.equal(idle.running + idle.waiting + idle.active_requests, 0, JSON.stringify(idle));
});

test('a request larger than the room left in the queue is a 429 and leaves nothing running', async () => {
  // --max-num-seqs 1: n=4 keeps one sequence running and three waiting.
  const ctrl = new AbortController();
  const hold = await fetch(`${srv.url}/v1/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, signal: ctrl.signal,
    body: JSON.stringify({ prompt: 'Once upon a time', max_tokens: 2000, ignore_eos: true, temperature: 0,
      n: 4, stream: true }),
  });
  assert.equal(hold.status, 200);
  let rd;
  for (let i = 0; i < 500; i++) {
    rd = (await ready(srv)).body;
    if (rd.waiting === 3) break;
    await sleep(10);
  }
  assert.equal(rd.waiting, 3, JSON.stringify(rd));
  // 2 prompts x n=3 = 6 sequences, room for 5: refused whole, nothing submitted.
  const refused = await post(srv, '/v1/completions', { prompt: ['a', 'b'], n: 3, max_tokens: 4 });
  assert.equal(refused.status, 429, refused.text);
  assert.equal(refused.json.error.code, 'queue_full');
  assert.ok(Number(refused.headers.get('retry-after')) >= 1);
  const after = (await ready(srv)).body;
  assert.equal(after.waiting, 3, JSON.stringify(after));
  assert.equal(after.active_requests, 1, JSON.stringify(after));
  ctrl.abort();
  hold.body?.cancel().catch(() => {});
  const idle = await waitIdle(srv);
  assert.equal(idle.kv_blocks_free, idle.kv_blocks_total, JSON.stringify(idle));
  assert.equal(idle.active_requests, 0, JSON.stringify(idle));
});

test('requests arriving together cannot overfill the queue before the engine counts them', async () => {
  // Two requests of 6 sequences each (--max-queue 8), sent at once: the
  // second must be refused even if the engine has not taken the first yet.
  const body = (p) => JSON.stringify({ prompt: [p, p], n: 3, max_tokens: 400, ignore_eos: true, stream: true });
  const ctrl = new AbortController();
  const send = (p) => fetch(`${srv.url}/v1/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: body(p), signal: ctrl.signal,
  });
  const rs = await Promise.all([send('Once'), send('Lily')]);
  const codes = rs.map((r) => r.status).sort();
  assert.deepEqual(codes, [200, 429]);
  const refused = rs.find((r) => r.status === 429);
  assert.ok(Number(refused.headers.get('retry-after')) >= 1);
  assert.equal((await refused.json()).error.code, 'queue_full');
  ctrl.abort();
  for (const r of rs) r.body?.cancel().catch(() => {});
  const idle = await waitIdle(srv);
  assert.equal(idle.kv_blocks_free, idle.kv_blocks_total, JSON.stringify(idle));
  assert.equal(idle.active_requests, 0, JSON.stringify(idle));
  // Afterwards the whole queue is free again.
  const ok = await client.completions.create({ model: MODEL_NAME, prompt: ['a', 'b', 'c', 'd'], n: 2, max_tokens: 2 });
  assert.equal(ok.choices.length, 8);
});

test('logprobs 0: top_logprobs holds the sampled token (vLLM), not {}', async () => {
  for (const temperature of [0, 1.2]) {
    const r = await client.completions.create({ model: MODEL_NAME, prompt: 'Once upon a time', max_tokens: 6,
      temperature, seed: 5, logprobs: 0 });
    const lp = r.choices[0].logprobs;
    assert.equal(lp.tokens.length, 6);
    assert.equal(lp.top_logprobs.length, 6);
    for (let i = 0; i < 6; i++) {
      const entries = Object.entries(lp.top_logprobs[i]);
      assert.equal(entries.length, 1, JSON.stringify(lp.top_logprobs[i]));
      assert.equal(entries[0][0], lp.tokens[i]);
      assert.equal(entries[0][1], lp.token_logprobs[i]);
    }
  }
  // logprobs 2 at a high temperature: the sampled token is always listed.
  const r = await client.completions.create({ model: MODEL_NAME, prompt: 'Once upon a time', max_tokens: 12,
    temperature: 2, seed: 11, logprobs: 2 });
  const lp = r.choices[0].logprobs;
  for (let i = 0; i < lp.tokens.length; i++) {
    const top = lp.top_logprobs[i];
    assert.ok(lp.tokens[i] in top, JSON.stringify({ token: lp.tokens[i], top }));
    const n = Object.keys(top).length;
    assert.ok(n >= 1 && n <= 3, JSON.stringify(top));
  }
});

test('a slow chat template gets 400 after the render budget; /health stays responsive', async () => {
  const file = path.join(dir, 'slow.jinja');
  fs.writeFileSync(file, "{% set s='x'*10000000 %}{% for j in range(10) %}{% for i in range(100000) %}" +
    "{% if 'y' in s %}{% endif %}{% endfor %}{% endfor %}");
  const slow = await startServer({ args: ['--chat-template', file] });
  try {
    const chat = post(slow, '/v1/chat/completions', { messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 });
    await sleep(100);
    let worst = 0;
    for (let i = 0; i < 5; i++) {
      const t0 = Date.now();
      const h = await fetch(`${slow.url}/health`);
      worst = Math.max(worst, Date.now() - t0);
      assert.equal(h.status, 200);
      await sleep(50);
    }
    assert.ok(worst < 1500, `/health took ${worst} ms during a slow render`);
    const r = await chat;
    assert.equal(r.status, 400, r.text);
    assert.match(r.json.error.message, /TimeoutError: the render took longer than 1000 ms/);
    assert.equal(r.json.error.code, 'chat_template_error');
  } finally {
    const rc = await slow.stop();
    assert.equal(rc.code, 0, slow.stderr.slice(-2000));
  }
});

// Each token of the logprobs must start inside the returned text: the pieces
// joined begin with the text and the last piece starts before its end.
function assertCovers(pieces, text, what) {
  const joined = pieces.join('');
  assert.ok(joined.startsWith(text), `${what}: ${JSON.stringify(pieces)} vs ${JSON.stringify(text)}`);
  assert.ok(pieces.length > 0 && joined.length - pieces[pieces.length - 1].length < text.length,
    `${what}: tokens past the stop: ${JSON.stringify(pieces)} vs ${JSON.stringify(text)}`);
}

test('a stop string trims the logprobs tokens past the cut (completions and chat)', async () => {
  const base = { model: MODEL_NAME, prompt: 'Once upon a time', max_tokens: 24, temperature: 0, logprobs: 0 };
  const full = await client.completions.create(base);
  const toks = full.choices[0].logprobs.tokens;
  assert.equal(toks.length, 24);
  // A stop string spanning tokens 5-7 without the leading space of token 5:
  // token 5 is partly shown, 6 and 7 must go.
  const stop = (toks[5] + toks[6] + toks[7]).trimStart();
  assert.ok(stop.length > 2);
  const cut = await client.completions.create({ ...base, stop: [stop] });
  const c = cut.choices[0];
  assert.equal(c.finish_reason, 'stop');
  assert.ok(full.choices[0].text.startsWith(c.text + stop), JSON.stringify(c.text));
  const lp = c.logprobs;
  assertCovers(lp.tokens, c.text, 'completions');
  assert.equal(lp.token_logprobs.length, lp.tokens.length);
  assert.equal(lp.top_logprobs.length, lp.tokens.length);
  assert.equal(lp.text_offset.length, lp.tokens.length);
  let off = 0;
  lp.tokens.forEach((t, i) => { assert.equal(lp.text_offset[i], off); off += t.length; });

  const msg = { model: MODEL_NAME, messages: [{ role: 'user', content: 'Tell a story' }], max_tokens: 24,
    temperature: 0, logprobs: true };
  const cfull = await client.chat.completions.create(msg);
  const ctoks = cfull.choices[0].logprobs.content.map((e) => e.token);
  assert.ok(ctoks.length >= 8, JSON.stringify(ctoks));
  const cstop = (ctoks[4] + ctoks[5] + ctoks[6]).trimStart();
  const ccut = await client.chat.completions.create({ ...msg, stop: [cstop] });
  assert.equal(ccut.choices[0].finish_reason, 'stop');
  assertCovers(ccut.choices[0].logprobs.content.map((e) => e.token), ccut.choices[0].message.content, 'chat');
});
