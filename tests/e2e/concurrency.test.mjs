// 200 concurrent streaming clients on stories260K all complete with correct,
// complete outputs (greedy, equal to llama.cpp's references); random
// disconnects among them leave the server healthy with every block free.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import OpenAI from 'openai';
import { startServer, ROOT, MODEL_NAME, waitIdle, sleep } from './lib/server.mjs';

let srv;
let client;

// Rows whose greedy choice is robust to float summation order: batching
// changes the order (llama.cpp's own batch check moved logits by ~1e-5).
const MIN_MARGIN = 1e-3;
const allRows = fs.readFileSync(path.join(ROOT, 'tests/data/greedy/stories260K_greedy.jsonl'), 'utf8')
  .split('\n').filter(Boolean).map((l) => JSON.parse(l));
const rows = allRows.filter((r) => r.min_top1_margin > MIN_MARGIN);

before(async () => {
  if (rows.length < allRows.length)
    console.log(`# skipping ${allRows.length - rows.length} reference rows with a top-1 margin <= ${MIN_MARGIN}`);
  srv = await startServer({ args: ['--threads', '2', '--max-num-seqs', '64', '--kv-cache-memory', '256M'] });
  client = new OpenAI({ baseURL: `${srv.url}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 120000 });
});

after(async () => {
  const r = await srv.stop();
  assert.equal(r.code, 0, srv.stderr.slice(-2000));
});

async function streamOne(row) {
  const stream = await client.completions.create({
    model: MODEL_NAME, prompt: row.prompt, max_tokens: row.ids.length, temperature: 0, stream: true,
    stream_options: { include_usage: true },
  });
  let text = '';
  let finish = null;
  let usage = null;
  for await (const chunk of stream) {
    if (chunk.usage) usage = chunk.usage;
    for (const c of chunk.choices) {
      text += c.text;
      if (c.finish_reason) finish = c.finish_reason;
    }
  }
  return { text, finish, usage };
}

// Starts a stream and drops it after a random delay (or the first bytes).
async function streamAndDrop(row, delayMs) {
  const ctrl = new AbortController();
  try {
    const r = await fetch(`${srv.url}/v1/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, signal: ctrl.signal,
      body: JSON.stringify({ prompt: row.prompt, max_tokens: 1000, ignore_eos: true, temperature: 0, stream: true }),
    });
    const reader = r.body.getReader();
    setTimeout(() => ctrl.abort(), delayMs);
    for (;;) {
      const { done } = await reader.read();
      if (done) break;
    }
  } catch { /* aborted: that is the point */ }
}

test('200 concurrent streams complete correctly; random disconnects leave it healthy', async () => {
  let seed = 12345;
  const rand = () => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648; };
  const jobs = [];
  for (let i = 0; i < 200; i++) {
    const row = rows[i % rows.length];
    jobs.push(streamOne(row).then((res) => ({ row, res })));
  }
  const drops = [];
  for (let i = 0; i < 40; i++) drops.push(streamAndDrop(rows[i % rows.length], Math.floor(rand() * 300)));
  const results = await Promise.all(jobs);
  await Promise.all(drops);
  let bad = 0;
  for (const { row, res } of results) {
    if (res.text !== row.text || res.finish !== 'length' || res.usage?.completion_tokens !== row.ids.length) {
      bad++;
      if (bad <= 3) console.log(`# mismatch for ${JSON.stringify(row.prompt)}: ${JSON.stringify(res)}`);
    }
  }
  assert.equal(bad, 0, `${bad} of 200 streams were wrong or incomplete`);
  const idle = await waitIdle(srv, 20000);
  assert.equal(idle.kv_blocks_free, idle.kv_blocks_total, JSON.stringify(idle));
  assert.equal(idle.running, 0);
  assert.equal(idle.waiting, 0);
  assert.equal(idle.active_requests, 0);
  assert.equal((await fetch(`${srv.url}/health`)).status, 200);
  await sleep(10);
  const after = await streamOne(rows[0]);
  assert.equal(after.text, rows[0].text);
});
