// Operator-facing checks of `inferd serve` found missing in review: start-up
// failures (bad model file, port in use, unreadable --chat-template) exit 1
// with a message naming the cause; the chat template is read from the GGUF
// (tokenizer.chat_template); SIGINT drains like SIGTERM; a client that sends
// half a body and stops gets 408; the server stays clean afterwards.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { BIN, MODEL, ROOT, startServer, post, waitIdle, sleep } from './lib/server.mjs';

let dir;

before(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'inferd-qa7-')); });
after(() => { fs.rmSync(dir, { recursive: true, force: true }); });

// Runs `inferd serve ARGS` to completion (start-up failures exit at once).
function serveFails(args) {
  const r = spawnSync(BIN, ['serve', '--port', '0', '--threads', '1', '--kv-cache-memory', '16M', ...args],
    { cwd: ROOT, encoding: 'utf8', timeout: 20000 });
  return { code: r.status, stderr: r.stderr };
}

test('start-up failures exit 1 and say why', async () => {
  const junk = path.join(dir, 'junk.gguf');
  fs.writeFileSync(junk, 'not a gguf file');
  let r = serveFails(['--model', junk]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /junk\.gguf/);
  const cut = path.join(dir, 'cut.gguf');
  fs.writeFileSync(cut, fs.readFileSync(MODEL).subarray(0, 100));
  r = serveFails(['--model', cut]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /cut\.gguf/);
  r = serveFails(['--model', MODEL, '--chat-template', path.join(dir, 'missing.jinja')]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /--chat-template: .*missing\.jinja/);

  const holder = net.createServer();
  await new Promise((res) => holder.listen(0, '127.0.0.1', res));
  const port = holder.address().port;
  const rr = spawnSync(BIN, ['serve', '--model', MODEL, '--port', String(port), '--threads', '1'],
    { cwd: ROOT, encoding: 'utf8', timeout: 20000 });
  holder.close();
  assert.equal(rr.status, 1, rr.stderr);
  assert.match(rr.stderr, new RegExp(`${port}.*in use`));
});

test('the chat template comes from the GGUF when there is no --chat-template', async () => {
  // A tiny random model carrying the Phi-3 tokenizer and its chat template.
  const gguf = path.join(dir, 'phi3-tiny.gguf');
  const s = spawnSync(BIN, ['synth', '--vocab', 'tests/data/vocab/ggml-vocab-phi-3.gguf', '--out', gguf,
    '--n-embd', '32', '--n-ff', '64', '--n-layer', '1', '--n-head', '2', '--ctx', '256', '--threads', '1'],
  { cwd: ROOT, encoding: 'utf8' });
  assert.equal(s.status, 0, s.stderr);
  const srv = await startServer({ args: ['--model', gguf, '--served-model-name', 'phi3'] });
  try {
    assert.match(srv.stderr, /chat template: the model/);
    const messages = [{ role: 'user', content: 'hi' }, { role: 'assistant', content: 'yo' },
      { role: 'user', content: 'again' }];
    const t = await post(srv, '/tokenize', { messages });
    assert.equal(t.status, 200, t.text);
    // <s><|user|>\nhi<|end|>\n<|assistant|>\nyo<|end|>\n<|user|>\nagain<|end|>\n<|assistant|>\n
    const USER = 32010, END = 32007, ASSISTANT = 32001;
    assert.equal(t.json.tokens[0], 1);
    assert.equal(t.json.tokens[1], USER);
    assert.deepEqual(t.json.tokens.filter((x) => x > 32000), [USER, END, ASSISTANT, END, USER, END, ASSISTANT]);
    const c = await post(srv, '/v1/chat/completions', { model: 'phi3', messages, max_tokens: 2 });
    assert.equal(c.status, 200, c.text);
    assert.equal(c.json.usage.prompt_tokens, t.json.count);
  } finally {
    const r = await srv.stop();
    assert.equal(r.code, 0, srv.stderr.slice(-2000));
  }
});

// Sends raw bytes; resolves with everything read until the server closes.
function rawExchange(port, chunks, { gapMs = 0, timeoutMs = 10000 } = {}) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    let out = '';
    const timer = setTimeout(() => { sock.destroy(); reject(new Error(`no close within ${timeoutMs} ms: ${out}`)); }, timeoutMs);
    sock.on('data', (d) => { out += d; });
    sock.on('close', () => { clearTimeout(timer); resolve(out); });
    sock.on('error', () => {});
    sock.on('connect', async () => {
      for (const c of chunks) { sock.write(c); if (gapMs) await sleep(gapMs); }
    });
  });
}

test('half a body then silence: 408 and close; SIGINT drains a stream and exits 0', async () => {
  const srv = await startServer({ args: ['--header-timeout', '1'] });
  let exited = false;
  try {
    const t0 = Date.now();
    const reply = await rawExchange(srv.port,
      ['POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"prompt":']);
    assert.match(reply, /^HTTP\/1\.1 408 /);
    assert.ok(Date.now() - t0 < 5000, `408 after ${Date.now() - t0} ms`);
    const idle = await waitIdle(srv);
    assert.equal(idle.active_requests, 0);

    // A long stream is in flight when SIGINT arrives: it still completes.
    const streamP = fetch(`${srv.url}/v1/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'Once', max_tokens: 200, ignore_eos: true, stream: true }),
    }).then((r) => r.text());
    await sleep(100);
    srv.proc.kill('SIGINT');
    await sleep(50);
    const rd = await fetch(`${srv.url}/ready`).catch(() => null);
    if (rd) assert.equal(rd.status, 503);
    const text = await streamP;
    assert.match(text, /"finish_reason":"length"/);
    assert.ok(text.endsWith('data: [DONE]\n\n'));
    const r = await srv.exitedPromise;
    exited = true;
    assert.equal(r.code, 0, srv.stderr.slice(-2000));
    assert.match(srv.stderr, /"signal":2/);
  } finally {
    if (!exited) await srv.stop();
  }
});

// CPU seconds (user + system) the process has used so far.
function cpuSeconds(pid) {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

test('out of file descriptors: accepts pause (no spin, no log flood) and resume', async () => {
  if (!fs.existsSync('/proc/self/stat')) { console.log('# skipped: no /proc'); return; }
  const proc = spawn('bash', ['-c', `ulimit -n 40 && exec "${BIN}" serve --model "${MODEL}" --port 0 ` +
    '--threads 1 --kv-cache-memory 16M --no-access-log'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stdout.on('data', (d) => { out += d; });
  proc.stderr.on('data', (d) => { err += d; });
  const exited = new Promise((res) => proc.on('exit', (code) => res(code)));
  const socks = [];
  try {
    for (let i = 0; i < 200 && !out.includes('inferd: ready'); i++) await sleep(25);
    const port = Number(out.match(/127\.0\.0\.1:(\d+)/)[1]);
    assert.match(err, /open-file limit \(40\)/);
    // 60 connections: about 30 fit under the limit, the rest wait in the backlog.
    for (let i = 0; i < 60; i++) {
      const s = net.connect(port, '127.0.0.1');
      s.on('error', () => {});
      s.got = '';
      s.on('data', (d) => { s.got += d; });
      socks.push(s);
    }
    await sleep(300);
    const cpu0 = cpuSeconds(proc.pid);
    await sleep(1000);
    const spent = cpuSeconds(proc.pid) - cpu0;
    assert.ok(spent < 0.3, `the idle server used ${spent} s of CPU in 1 s while out of descriptors`);
    assert.ok(err.length < 100000, `${err.length} bytes of log`);
    // Close the first 40: the ones that waited are accepted and answered.
    for (const s of socks.slice(0, 40)) s.destroy();
    await sleep(400);
    for (const s of socks.slice(40)) s.write('GET /health HTTP/1.1\r\nHost: x\r\n\r\n');
    for (let i = 0; i < 100 && socks.slice(40).some((s) => !s.got); i++) await sleep(20);
    for (const s of socks.slice(40)) assert.match(s.got, /^HTTP\/1\.1 200 /);
  } finally {
    for (const s of socks) s.destroy();
    proc.kill('SIGTERM');
  }
  assert.equal(await exited, 0, err.slice(-2000));
});
