// --bind unix:PATH: one socket per worker (PATH.N), mode from --umask, stale files removed,
// a live one refused, and nginx in front of them.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixture, runServe, serve } from './helpers.js';
import { nginxMissing, startNginx } from './nginx.js';

function getVia(socketPath: string, path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path, headers: { host: 'app.local', ...headers } }, (res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('unix sockets', () => {
  let dir: string;
  let sock: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'narwhal-unix-'));
    chmodSync(dir, 0o755); // nginx's www-data workers must reach the sockets
    sock = join(dir, 'app.sock');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('gives every worker its own socket, with the --umask mode, removed on exit', async () => {
    const server = await serve(fixture('echo.ts'), ['--workers', '2', '--bind', `unix:${sock}`, '--umask', '007']);
    try {
      assert.match(server.log(), new RegExp(`Listening at: http://127\\.0\\.0\\.1:\\d+, unix:${sock}\\.N`));
      for (const worker of [1, 2]) {
        assert.equal(statSync(`${sock}.${worker}`).mode & 0o777, 0o770);
        const echo = JSON.parse((await getVia(`${sock}.${worker}`, '/echo?w=1', { 'x-forwarded-for': '198.51.100.4' })).body);
        assert.equal(echo.url, 'http://app.local/echo?w=1');
        assert.deepEqual(echo.remoteAddr, { hostname: '198.51.100.4', port: 0, transport: 'tcp' }, 'a unix peer is a trusted proxy');
      }
      const direct = JSON.parse((await getVia(`${sock}.1`, '/echo')).body);
      assert.equal(direct.remoteAddr.transport, 'unix');
    } finally {
      assert.equal(await server.stop(), 0);
    }
    assert.ok(!existsSync(`${sock}.1`) && !existsSync(`${sock}.2`), 'socket files removed on exit');
  });

  it('removes a stale socket left by a killed server', async () => {
    const holder = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(`${sock}.1`)}, () => console.log('up'))`], { stdio: ['ignore', 'pipe', 'ignore'] });
    await once(holder.stdout!, 'data');
    holder.kill('SIGKILL');
    await once(holder, 'exit');
    assert.ok(existsSync(`${sock}.1`), 'the stale file is there');
    const server = await serve(fixture('echo.ts'), ['--workers', '1', '--bind', `unix:${sock}`]);
    try {
      assert.equal((await getVia(`${sock}.1`, '/sync')).status, 200);
    } finally {
      await server.stop();
    }
  });

  it('exits 1 when a live server owns the socket, and 3 when the path is unusable', async () => {
    const other = createServer().listen(`${sock}.1`);
    await once(other, 'listening');
    try {
      const { code, stderr } = await runServe([fixture('echo.ts'), '--workers', '1', '--bind', `unix:${sock}`]);
      assert.equal(code, 1);
      assert.match(stderr, new RegExp(`Connection in use: unix:${sock}\\.1`));
    } finally {
      other.close();
    }
    writeFileSync(`${sock}.1`, 'not a socket');
    const blocked = await runServe([fixture('echo.ts'), '--workers', '1', '--bind', `unix:${sock}`]);
    assert.equal(blocked.code, 3);
    assert.match(blocked.stderr, /a file that is not a socket is in the way/);
    const nowhere = await runServe([fixture('echo.ts'), '--bind', 'unix:/nonexistent-dir/app.sock']);
    assert.equal(nowhere.code, 3);
    assert.match(nowhere.stderr, /\/nonexistent-dir is not a directory/);
  });

  it('serves nginx through an upstream that lists every worker socket', async function () {
    const missing = nginxMissing();
    if (missing) {
      console.log(`      SKIPPED: ${missing}`);
      this.skip();
    }
    const server = await serve(fixture('echo.ts'), ['--workers', '2', '--bind', `unix:${sock}`]);
    const nginx = await startNginx(0, { upstream: `server unix:${sock}.1;\n    server unix:${sock}.2;` });
    try {
      const threads = new Set<string>();
      for (let i = 0; i < 20; i++) {
        const response = await fetch(`${nginx.url}/sync`, { headers: { connection: 'close' } });
        assert.equal(response.status, 200);
        threads.add(await response.text());
      }
      assert.equal(threads.size, 2, 'nginx spread requests over both workers');
    } finally {
      await nginx.stop();
      await server.stop();
    }
  });
});
