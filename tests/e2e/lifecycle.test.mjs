// Behaviour around a request's life: a client that disconnects (streaming or
// not) aborts its sequences and every KV block is free again; SIGTERM drains
// (in-flight requests complete, /ready and new work get 503, exit 0); the
// drain timeout aborts what is left and still exits 0.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startServer, post, ready, waitIdle, sleep } from './lib/server.mjs';

const LONG = { prompt: 'Once upon a time', max_tokens: 2000, ignore_eos: true, temperature: 0 };

async function metric(srv, name) {
  const text = await (await fetch(`${srv.url}/metrics`)).text();
  const m = text.match(new RegExp(`^${name} (\\S+)$`, 'm'));
  return m ? Number(m[1]) : NaN;
}

test('client disconnects abort their sequences; all blocks are free afterwards', async () => {
  const srv = await startServer();
  try {
    // Streaming: read the first chunk, then drop the connection.
    const ctrl = new AbortController();
    const r = await fetch(`${srv.url}/v1/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ...LONG, stream: true }), signal: ctrl.signal,
    });
    const reader = r.body.getReader();
    await reader.read();
    const busy = (await ready(srv)).body;
    assert.equal(busy.active_requests, 1);
    assert.ok(busy.kv_blocks_free < busy.kv_blocks_total, JSON.stringify(busy));
    ctrl.abort();
    let idle = await waitIdle(srv);
    assert.equal(idle.kv_blocks_free, idle.kv_blocks_total, JSON.stringify(idle));
    assert.equal(idle.active_requests, 0);
    assert.equal(await metric(srv, 'llm_client_aborts_total'), 1);

    // Not streaming: a raw socket sends the request and closes at once.
    const sock = net.connect(srv.port, '127.0.0.1');
    await new Promise((res) => sock.on('connect', res));
    const body = JSON.stringify({ ...LONG, n: 2 });
    sock.write(`POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    for (let i = 0; i < 100 && (await ready(srv)).body.active_requests === 0; i++) await sleep(5);
    sock.destroy();
    idle = await waitIdle(srv);
    assert.equal(idle.kv_blocks_free, idle.kv_blocks_total, JSON.stringify(idle));
    assert.equal(await metric(srv, 'llm_client_aborts_total'), 2);

    // The server still answers correctly.
    const ok = await post(srv, '/v1/completions', { prompt: 'Once upon a time', max_tokens: 4, temperature: 0 });
    assert.equal(ok.status, 200);
  } finally {
    const r = await srv.stop();
    assert.equal(r.code, 0, srv.stderr.slice(-2000));
  }
});

test('SIGTERM drains: in-flight requests complete, new work gets 503, exit 0', async () => {
  const srv = await startServer({ args: ['--drain-timeout', '60'] });
  const r = await fetch(`${srv.url}/v1/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    // Long enough (2 x 2000 tokens) to still run while the checks below happen.
    body: JSON.stringify({ prompt: 'Once upon a time', max_tokens: 2000, n: 2, ignore_eos: true, temperature: 0,
      stream: true, stream_options: { include_usage: true } }),
  });
  const reader = r.body.getReader();
  const dec = new TextDecoder();
  let text = dec.decode((await reader.read()).value);
  srv.proc.kill('SIGTERM');
  await sleep(100);
  assert.equal(srv.exited, null, 'still running while a request is in flight');
  const rd = await ready(srv);
  assert.equal(rd.status, 503);
  assert.equal(rd.body.status, 'draining');
  const refused = await post(srv, '/v1/completions', { prompt: 'x', max_tokens: 2 });
  assert.equal(refused.status, 503);
  assert.ok(refused.headers.get('retry-after'));
  assert.equal((await fetch(`${srv.url}/health`)).status, 200);
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    text += dec.decode(value);
  }
  assert.ok(text.endsWith('data: [DONE]\n\n'));
  const usage = text.split('\n\n').filter((b) => b.startsWith('data: {')).map((b) => JSON.parse(b.slice(6)))
    .find((c) => c.usage)?.usage;
  assert.equal(usage.completion_tokens, 4000, 'the in-flight request ran to its end');
  const exit = await srv.exitedPromise;
  assert.equal(exit.code, 0, srv.stderr.slice(-2000));
});

test('the drain timeout aborts what is left and exits 0', async () => {
  const srv = await startServer({ args: ['--drain-timeout', '0.3', '--max-num-seqs', '2'] });
  const streams = [];
  for (let i = 0; i < 4; i++) {
    streams.push(fetch(`${srv.url}/v1/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ...LONG, n: 2, stream: true }),
    }).then((res) => res.text()).catch((e) => `error: ${e}`));
  }
  await sleep(100);
  const t0 = Date.now();
  srv.proc.kill('SIGTERM');
  const exit = await srv.exitedPromise;
  assert.equal(exit.code, 0, srv.stderr.slice(-2000));
  assert.ok(Date.now() - t0 < 5000, `exit took ${Date.now() - t0} ms`);
  for (const body of await Promise.all(streams)) {
    if (body.startsWith('error')) continue; // the connection may close mid-stream
    assert.ok(body.endsWith('data: [DONE]\n\n'), body.slice(-200));
  }
});
