// Error and access logs: gunicorn's formats, JSON lines, files reopened on USR1, and lines
// that never interleave.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixture, ROOT, runServe, SERVE, serve, until } from './helpers.js';

const read = (path: string): string => (existsSync(path) ? readFileSync(path, 'utf8') : '');
const lines = (text: string): string[] => text.split('\n').filter(Boolean);

describe('logs', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'narwhal-logs-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("writes gunicorn's access log format to a file", async () => {
    const log = join(dir, 'access.log');
    const server = await serve(fixture('echo.ts'), ['--workers', '2', '--access-log', log]);
    try {
      await fetch(`${server.url}/bytes?n=42`, { headers: { 'user-agent': 'curl/8', referer: 'http://from.example/' } });
      await fetch(`${server.url}/status?code=404&body=x`);
      const text = await until(() => read(log), (t) => lines(t).length >= 2);
      assert.match(text, /^127\.0\.0\.1 - - \[\d{2}\/\w{3}\/\d{4}:\d{2}:\d{2}:\d{2} \+0000\] "GET \/bytes\?n=42 HTTP\/1\.1" 200 42 "http:\/\/from\.example\/" "curl\/8"$/m);
      assert.match(text, /"GET \/status\?code=404&body=x HTTP\/1\.1" 404 1 "-" "/m);
    } finally {
      await server.stop();
    }
  });

  it('takes a custom format with request and response header atoms and timings', async () => {
    const log = join(dir, 'access.log');
    const format = '%(m)s %(U)s q=%(q)s s=%(s)s B=%(B)s ms=%(M)s in=%({x-req}i)s out=%({content-type}o)s';
    const server = await serve(fixture('echo.ts'), ['--workers', '1', '--access-log', log, '--access-log-format', format]);
    try {
      await fetch(`${server.url}/cookies?a=1`, { headers: { 'x-req': 'hello' } });
      const text = await until(() => read(log), (t) => lines(t).length >= 1);
      assert.match(text, /^GET \/cookies q=a=1 s=200 B=7 ms=\d+ in=hello out=text\/plain$/m);
    } finally {
      await server.stop();
    }
  });

  it('writes JSON lines for both logs with --log-format json; 4 workers never interleave lines on stdout', async () => {
    const server = await serve(fixture('echo.ts'), ['--workers', '4', '--access-log', '-', '--log-format', 'json']);
    try {
      const total = 400;
      await Promise.all(Array.from({ length: total }, (_, i) => fetch(`${server.url}/sync?i=${i}`, { headers: { connection: 'close' } }).then((r) => r.text())));
      const records = await until(() => lines(server.stdout()), (l) => l.length >= total);
      const parsed = records.map((line) => JSON.parse(line) as { path: string; query: string; status: number; method: string });
      assert.equal(new Set(parsed.map((r) => r.query)).size, total, 'every request once, every line whole');
      assert.ok(parsed.every((r) => r.path === '/sync' && r.status === 200 && r.method === 'GET'));
      for (const line of lines(server.log())) {
        const record = JSON.parse(line) as { level: string; message: string; time: string };
        assert.ok(record.level && record.message && record.time, line);
      }
    } finally {
      await server.stop();
    }
  });

  it('reopens log files on USR1 (logrotate)', async () => {
    const log = join(dir, 'access.log');
    const server = await serve(fixture('echo.ts'), ['--workers', '2', '--access-log', log]);
    try {
      await fetch(`${server.url}/sync?before`);
      await until(() => read(log), (t) => t.includes('?before'));
      renameSync(log, `${log}.1`);
      server.child.kill('SIGUSR1');
      await server.waitForLog(/Handling signal: SIGUSR1; reopening log files/);
      // The reopen reaches the workers through two hops; requests after it land in the new file.
      await server.waitForLog(/Worker 1 reopened its log files/);
      await server.waitForLog(/Worker 2 reopened its log files/);
      await fetch(`${server.url}/sync?after`, { headers: { connection: 'close' } });
      await fetch(`${server.url}/sync?after`, { headers: { connection: 'close' } });
      await until(() => read(log), (t) => t.includes('?after'));
      assert.ok(!read(`${log}.1`).includes('?after'));
    } finally {
      await server.stop();
    }
  });

  it('writes the error log to --error-log FILE instead of stderr', async () => {
    const log = join(dir, 'error.log');
    const child = spawn(process.execPath, [SERVE, fixture('echo.ts'), '--bind', '127.0.0.1:0', '--workers', '1', '--error-log', log], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk));
    try {
      await until(() => read(log), (t) => t.includes('Listening at:'));
      child.kill('SIGTERM');
      await once(child, 'exit');
      assert.match(read(log), /\[INFO\] Shutting down: Master/);
      assert.equal(stderr, '');
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('refuses an unknown access log atom with exit 2', async () => {
    const { code, stderr } = await runServe([fixture('echo.ts'), '--access-log', '-', '--access-log-format', '%(h)s %(zz)s']);
    assert.equal(code, 2);
    assert.match(stderr, /--access-log-format: unknown atom %\(zz\)s/);
  });
});
