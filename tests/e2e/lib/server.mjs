// Test helper: starts the real inferd binary (`inferd serve`) on a free port
// with the vendored stories260K model and stops it afterwards. The binary is
// $INFERD_BIN (default build/inferd), resolved from the repository root.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const BIN = path.resolve(ROOT, process.env.INFERD_BIN || 'build/inferd');
export const MODEL = path.join(ROOT, 'models', 'stories260K.gguf');
export const MODEL_NAME = 'stories260K';

// Starts a server; resolves once it listens and (unless waitReady is false)
// the model is loaded. args are extra command-line flags.
export async function startServer({ args = [], env = {}, waitReady = true, timeoutMs = 30000 } = {}) {
  const proc = spawn(BIN, ['serve', '--model', MODEL, '--host', '127.0.0.1', '--port', '0',
    '--threads', '1', '--kv-cache-memory', '64M', '--no-access-log', ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const srv = { proc, stdout: '', stderr: '', url: null, port: 0, exited: null };
  const exited = new Promise((resolve) => {
    proc.on('exit', (code, signal) => { srv.exited = { code, signal }; resolve(srv.exited); });
  });
  srv.exitedPromise = exited;
  proc.stdout.on('data', (d) => { srv.stdout += d; });
  proc.stderr.on('data', (d) => { srv.stderr += d; });
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const m = srv.stdout.match(/listening on (http:\/\/[^ ]+:(\d+))/);
    if (m && !srv.url) { srv.url = m[1]; srv.port = Number(m[2]); }
    if (srv.url && (!waitReady || srv.stdout.includes('inferd: ready'))) break;
    if (srv.exited) throw new Error(`inferd exited early (${JSON.stringify(srv.exited)}): ${srv.stderr}`);
    await sleep(20);
  }
  if (!srv.url || (waitReady && !srv.stdout.includes('inferd: ready'))) {
    proc.kill('SIGKILL');
    throw new Error(`inferd did not start in ${timeoutMs} ms: ${srv.stdout}\n${srv.stderr}`);
  }
  srv.stop = async () => {
    if (!srv.exited) proc.kill('SIGTERM');
    const t = setTimeout(() => proc.kill('SIGKILL'), 15000);
    const r = await exited;
    clearTimeout(t);
    return r;
  };
  return srv;
}

export function sleep(ms) { return new Promise((r) => setTimeout(r, ms)); }

// GET /ready as {status, body}.
export async function ready(srv) {
  const r = await fetch(`${srv.url}/ready`);
  return { status: r.status, body: await r.json() };
}

// Waits until every KV block is free and nothing runs or waits (the engine
// frees aborted sequences within a step); returns the last /ready body.
export async function waitIdle(srv, timeoutMs = 10000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    last = (await ready(srv)).body;
    if (last.running === 0 && last.waiting === 0 && last.active_requests === 0 &&
        last.kv_blocks_free === last.kv_blocks_total) return last;
    await sleep(50);
  }
  return last;
}

// POSTs JSON; returns {status, headers, json|text}.
export async function post(srv, route, body, headers = {}) {
  const r = await fetch(`${srv.url}${route}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: r.status, headers: r.headers, json, text };
}

// Reads a server-sent-event stream body into the list of parsed data events
// (the final "[DONE]" kept as the string).
export async function readSSE(response) {
  const text = await response.text();
  const events = [];
  for (const block of text.split('\n\n')) {
    if (!block.trim()) continue;
    if (!block.startsWith('data: ')) throw new Error(`bad SSE block: ${JSON.stringify(block)}`);
    const data = block.slice(6);
    events.push(data === '[DONE]' ? data : JSON.parse(data));
  }
  return events;
}
