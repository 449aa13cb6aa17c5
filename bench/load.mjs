#!/usr/bin/env node
// Load test of a running inferd (or any OpenAI-compatible server): streaming
// /v1/completions, prompts of exactly N tokens (+BOS) cut from a text corpus
// at different offsets (unique prefixes, no prefix reuse), max_tokens 64,
// ignore_eos, temperature 0. Each level sends max(8, 2*C) requests, C at a
// time, after 2 warm-up requests (the method of llama-server's figures in
// docs/performance.md). TTFT = send to first token; TPOT = (last - first
// token) / (tokens - 1). Prints one markdown row per level.
//
//   node bench/load.mjs --url http://127.0.0.1:8000 [--clients 1,4,16,64]
//        [--prompt-tokens 100] [--max-tokens 64] [--keepalive 1] [--label NAME]
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = Object.fromEntries(process.argv.slice(2).reduce((acc, a, i, all) => {
  if (a.startsWith('--')) acc.push([a.slice(2), all[i + 1]]);
  return acc;
}, []));
const URL_ = new URL(args.url || 'http://127.0.0.1:8000');
const LEVELS = (args.clients || '1,4,16,64').split(',').map(Number);
const PROMPT_TOKENS = Number(args['prompt-tokens'] || 100);
const MAX_TOKENS = Number(args['max-tokens'] || 64);
const KEEPALIVE = args.keepalive !== '0';
const LABEL = args.label || '';
const agent = new http.Agent({ keepAlive: KEEPALIVE, maxSockets: Infinity });

function request(method, route, body) {
  return new Promise((resolve, reject) => {
    const data = body ? JSON.stringify(body) : undefined;
    const req = http.request({ host: URL_.hostname, port: URL_.port, path: route, method, agent,
      headers: data ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } : {} },
    (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { text += d; });
      res.on('end', () => resolve({ status: res.statusCode, text }));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (data) req.write(data);
    req.end();
  });
}

// One streaming request: resolves {ok, ttft, tpot, tokens, t_end} (ms).
function streamCompletion(model, promptIds) {
  return new Promise((resolve) => {
    const body = JSON.stringify({ model, prompt: promptIds, max_tokens: MAX_TOKENS, ignore_eos: true,
      temperature: 0, stream: true, stream_options: { include_usage: true } });
    const t0 = performance.now();
    let first = 0;
    let last = 0;
    let tokens = 0;
    let usageTokens = 0;
    let pending = '';
    let done = false;
    const fail = (why) => resolve({ ok: false, why });
    const req = http.request({ host: URL_.hostname, port: URL_.port, path: '/v1/completions', method: 'POST',
      agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
    (res) => {
      if (res.statusCode !== 200) { res.resume(); fail(`status ${res.statusCode}`); return; }
      res.setEncoding('utf8');
      res.on('data', (d) => {
        pending += d;
        let k;
        while ((k = pending.indexOf('\n\n')) >= 0) {
          const block = pending.slice(0, k);
          pending = pending.slice(k + 2);
          if (!block.startsWith('data: ')) continue;
          if (block === 'data: [DONE]') { done = true; continue; }
          const chunk = JSON.parse(block.slice(6));
          if (chunk.usage) usageTokens = chunk.usage.completion_tokens;
          for (const c of chunk.choices) {
            if (c.finish_reason) continue;
            const now = performance.now();
            if (!first) first = now;
            last = now;
            tokens++;
          }
        }
      });
      res.on('end', () => {
        if (!done || tokens === 0 || usageTokens !== MAX_TOKENS) {
          fail(`incomplete stream (${tokens} chunks, ${usageTokens} tokens)`);
          return;
        }
        tokens = usageTokens;
        resolve({ ok: true, ttft: first - t0, tpot: tokens > 1 ? (last - first) / (tokens - 1) : 0, tokens,
          t_end: performance.now() });
      });
      res.on('error', (e) => fail(String(e)));
    });
    req.on('error', (e) => fail(String(e)));
    req.write(body);
    req.end();
  });
}

function pct(xs, p) {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

function fmtMs(ms) { return ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(ms < 10 ? 1 : 0)} ms`; }

async function main() {
  const models = JSON.parse((await request('GET', '/v1/models')).text);
  const model = models.data[0].id;
  // Corpus -> token ids; each request takes its own 100-token window.
  const corpus = fs.readFileSync(path.join(ROOT, 'tests/data/bench/tokenizer-text.txt'), 'utf8').slice(0, 400000);
  const tok = JSON.parse((await request('POST', '/tokenize', { prompt: corpus, add_special_tokens: false })).text);
  const bos = JSON.parse((await request('POST', '/tokenize', { prompt: '', add_special_tokens: true })).text).tokens;
  const ids = tok.tokens;
  let offset = 0;
  const nextPrompt = () => {
    if (offset + PROMPT_TOKENS > ids.length) offset = (offset % 97) + 1;
    const p = [...bos, ...ids.slice(offset, offset + PROMPT_TOKENS)];
    offset += PROMPT_TOKENS + 1;
    return p;
  };
  for (let i = 0; i < 2; i++) await streamCompletion(model, nextPrompt()); // warm-up
  console.log(`| model | clients | TTFT p50 / p95 | TPOT p50 / p95 | output t/s | req/s | failed |`);
  console.log(`|---|---|---|---|---|---|---|`);
  for (const C of LEVELS) {
    const total = Math.max(8, 2 * C);
    const results = [];
    let sent = 0;
    const t0 = performance.now();
    const worker = async () => {
      while (sent < total) {
        sent++;
        results.push(await streamCompletion(model, nextPrompt()));
      }
    };
    await Promise.all(Array.from({ length: C }, worker));
    const wall = (performance.now() - t0) / 1000;
    const ok = results.filter((r) => r.ok);
    const failed = results.length - ok.length;
    const outTok = ok.reduce((a, r) => a + r.tokens, 0);
    const ttft = ok.map((r) => r.ttft);
    const tpot = ok.map((r) => r.tpot);
    console.log(`| ${LABEL || model} | ${C} | ${fmtMs(pct(ttft, 50))} / ${fmtMs(pct(ttft, 95))} | ` +
      `${fmtMs(pct(tpot, 50))} / ${fmtMs(pct(tpot, 95))} | ${(outTok / wall).toFixed(1)} | ` +
      `${(ok.length / wall).toFixed(2)} | ${failed} |`);
    for (const r of results.filter((x) => !x.ok).slice(0, 3)) console.error(`# failed: ${r.why}`);
  }
  agent.destroy();
}

main().catch((e) => { console.error(e); process.exit(1); });
