// `inferd serve` flags: --help lists every flag with its INFERD_* twin, the
// environment configures the server, the command line wins over it, and bad
// values are usage errors (exit 2) naming the flag.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startServer, BIN, MODEL } from './lib/server.mjs';

test('--help lists every flag with its environment twin', () => {
  const r = spawnSync(BIN, ['serve', '--help'], { encoding: 'utf8' });
  assert.equal(r.status, 0);
  const flags = [...r.stdout.matchAll(/^ {2}--([a-z-]+)/gm)].map((m) => m[1]);
  const envs = [...r.stdout.matchAll(/\[(INFERD_[A-Z_]+)\]/g)].map((m) => m[1]);
  for (const f of ['model', 'host', 'port', 'served-model-name', 'max-model-len', 'max-num-seqs',
    'max-num-batched-tokens', 'api-key', 'chat-template', 'kv-cache-memory', 'block-size', 'threads',
    'max-queue', 'max-body-bytes', 'allowed-origins', 'max-connections', 'drain-timeout', 'log-level',
    'header-timeout', 'idle-timeout']) {
    assert.ok(flags.includes(f), `--${f} listed`);
  }
  assert.deepEqual(envs, flags.filter((f) => f !== 'help').map((f) => `INFERD_${f.toUpperCase().replaceAll('-', '_')}`));
});

test('bad values and unknown flags are usage errors', () => {
  for (const args of [['--port', 'x'], ['--max-connections', '0'], ['--frobnicate'], ['--kv-cache-memory', '12Q'],
    ['--log-level', 'loud']]) {
    const r = spawnSync(BIN, ['serve', '--model', MODEL, ...args], { encoding: 'utf8' });
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, new RegExp(args[0]));
  }
  const none = spawnSync(BIN, ['serve'], { encoding: 'utf8' });
  assert.equal(none.status, 2);
  assert.match(none.stderr, /--model/);
  const missing = spawnSync(BIN, ['serve', '--model', 'no/such/file.gguf', '--port', '0'], { encoding: 'utf8' });
  assert.equal(missing.status, 1, missing.stderr);
  // A --chat-template that does not parse stops the server with the reason.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'inferd-cli-'));
  fs.writeFileSync(path.join(dir, 'bad.jinja'), '{% if %}never closed');
  const bad = spawnSync(BIN, ['serve', '--model', MODEL, '--port', '0', '--chat-template', path.join(dir, 'bad.jinja')],
    { encoding: 'utf8', timeout: 30000 });
  fs.rmSync(dir, { recursive: true, force: true });
  assert.equal(bad.status, 1, bad.stderr);
  assert.match(bad.stderr, /chat template/);
});

test('INFERD_* environment variables configure the server; flags win', async () => {
  const srv = await startServer({
    env: { INFERD_SERVED_MODEL_NAME: 'from-env', INFERD_API_KEY: 'env-key' },
    args: ['--served-model-name', 'from-flag'],
  });
  try {
    const noKey = await fetch(`${srv.url}/v1/models`);
    assert.equal(noKey.status, 401);
    const r = await fetch(`${srv.url}/v1/models`, { headers: { authorization: 'Bearer env-key' } });
    assert.equal(r.status, 200);
    assert.equal((await r.json()).data[0].id, 'from-flag');
  } finally {
    const r = await srv.stop();
    assert.equal(r.code, 0, srv.stderr.slice(-2000));
  }
});
