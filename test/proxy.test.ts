// Behind a proxy: X-Forwarded-* from trusted peers only, and a real nginx with the shipped config.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { fixture, rawExchange, runServe, serve, type Served } from './helpers.js';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureMigrateReq, startLoad } from './load.js';
import { nginxMissing, opensslMissing, startNginx, type Nginx } from './nginx.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
const json = async (response: Response | Promise<Response>): Promise<any> => (await response).json();

const forwardedRequest = 'GET /echo?x=1 HTTP/1.1\r\nHost: internal:8000\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: shop.example\r\nX-Forwarded-For: 203.0.113.7, 10.0.0.2\r\n\r\n';

describe('X-Forwarded-* and --forwarded-allow-ips', () => {
  it('believes a trusted proxy: scheme and host of request.url, client address from the rightmost untrusted hop', async () => {
    const server = await serve(fixture('echo.ts'), ['--workers', '1', '--forwarded-allow-ips', '127.0.0.1,10.0.0.0/8']);
    try {
      const echo = JSON.parse((await rawExchange(server.port, forwardedRequest)).responses[0]!.body.toString());
      assert.equal(echo.url, 'https://shop.example/echo?x=1');
      assert.equal(echo.remoteAddr.hostname, '203.0.113.7', '10.0.0.2 is a trusted hop, so the client is the one before it');
    } finally {
      await server.stop();
    }
  });

  it('ignores the headers from a peer it does not trust (spoofing)', async () => {
    const server = await serve(fixture('echo.ts'), ['--workers', '1', '--forwarded-allow-ips', '192.0.2.1']);
    try {
      const echo = JSON.parse((await rawExchange(server.port, forwardedRequest)).responses[0]!.body.toString());
      assert.equal(echo.url, 'http://internal:8000/echo?x=1');
      assert.equal(echo.remoteAddr.hostname, '127.0.0.1');
    } finally {
      await server.stop();
    }
  });

  it('refuses a malformed --forwarded-allow-ips with exit 2', async () => {
    const { code, stderr } = await runServe([fixture('echo.ts'), '--forwarded-allow-ips', '10.0.0.0/99']);
    assert.equal(code, 2);
    assert.match(stderr, /--forwarded-allow-ips takes IP addresses, CIDR blocks \(10\.0\.0\.0\/8\) or \*, not '10\.0\.0\.0\/99'/);
  });
});

/** A request over https to nginx's self-signed listener. */
function httpsGet(url: string, headers: Record<string, string>): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { rejectUnauthorized: false, headers }, (res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk));
      res.on('end', () => resolve(body));
    });
    req.on('error', reject);
    req.end();
  });
}

for (const transport of ['tcp', 'unix'] as const) {
  describe(`behind nginx (deploy/nginx.conf, workers as www-data) over ${transport}`, function () {
    let server: Served;
    let nginx: Nginx;
    let tls: Nginx | undefined;
    let dir: string;
    before(async function () {
      const missing = nginxMissing();
      if (missing) {
        console.log(`      SKIPPED: ${missing}`);
        this.skip();
      }
      dir = mkdtempSync(join(tmpdir(), 'narwhal-behind-'));
      chmodSync(dir, 0o755); // nginx's www-data workers must reach the sockets
      const sock = join(dir, 'app.sock');
      const args = ['--workers', '2', '--limit-request-body', String(8 * 1024 * 1024)];
      server = await serve(fixture('echo.ts'), transport === 'unix' ? [...args, '--bind', `unix:${sock}`] : args);
      const upstream = transport === 'unix' ? { upstream: `server unix:${sock}.1;\n    server unix:${sock}.2;` } : {};
      nginx = await startNginx(server.port, upstream);
      if (!opensslMissing()) tls = await startNginx(server.port, { ...upstream, tls: true });
    });
    after(async () => {
      await tls?.stop();
      await nginx?.stop();
      await server?.stop();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    it('passes the https scheme, the host and the client address from the trusted proxy', async function () {
      if (!tls) {
        console.log(`      SKIPPED: ${opensslMissing()}`);
        this.skip();
      }
      const echo = JSON.parse(await httpsGet(`${tls!.url}/echo?via=nginx`, { host: 'shop.example', 'x-forwarded-for': '198.51.100.23' }));
      assert.equal(echo.url, 'https://shop.example/echo?via=nginx');
      assert.equal(echo.remoteAddr.hostname, '198.51.100.23');
      const headers = new Map(echo.headers as [string, string][]);
      assert.equal(headers.get('connection'), undefined, 'nginx keeps the upstream connection alive');
    });

    it('serves 200 concurrent requests over its kept-alive upstream connections', async () => {
      const results = await Promise.all(Array.from({ length: 200 }, () => fetch(`${nginx.url}/sync`).then((r) => r.status)));
      assert.ok(results.every((status) => status === 200));
    });

    it('streams responses through as they are produced (proxy_buffering off)', async () => {
      const response = await fetch(`${nginx.url}/slow-stream?chunks=3&delay=300`);
      const reader = response.body!.getReader();
      const first = await reader.read();
      const firstAt = Date.now();
      let rest = '';
      for (let part = await reader.read(); !part.done; part = await reader.read()) rest += new TextDecoder().decode(part.value);
      assert.match(new TextDecoder().decode(first.value), /^chunk 0/);
      const secondProducedAt = Number(/chunk 1 at (\d+)/.exec(rest)?.[1]);
      assert.ok(firstAt < secondProducedAt, 'nginx held the first chunk back');
    });

    it('passes a 4 MiB upload through to the app intact', async () => {
      const body = Buffer.alloc(4 * 1024 * 1024, 7);
      const result = await json(fetch(`${nginx.url}/digest`, { method: 'POST', body }));
      assert.equal(result.size, body.length);
      assert.equal(result.sha256, createHash('sha256').update(body).digest('hex'));
    });

    it('answers a body over --limit-request-body with 413, and keeps serving', async () => {
      const response = await fetch(`${nginx.url}/echo`, { method: 'POST', body: Buffer.alloc(9 * 1024 * 1024, 1) });
      assert.equal(response.status, 413, 'nginx passes the 413 on (a connection closed under it would be a 502)');
      assert.equal((await fetch(`${nginx.url}/sync`)).status, 200);
    });

    it('can be load-tested through nginx with serve bench --url', async () => {
      // No --fail-on-errors here: nginx closes a client connection after keepalive_requests (1000)
      // requests, and autocannon counts the request it had in flight on it as an error.
      const { code, stdout, stderr } = await runServe(['bench', '--url', `${nginx.url}/sync`, '--duration', '0.5', '--warmup', '0', '--connections', '4'], { timeoutMs: 30_000 });
      assert.equal(code, 0, `${stderr}\n${stdout}`);
      assert.match(stdout, /\| - \| [\d,]+ \| [\d,]+ \| \d+ \| \d+ \| \d+ \| \d+ \| [\d.]+ \| \d+ \| 0 \| 0 \|/, 'no timeouts, no non-2xx');
      assert.match(stdout, /\n\| - \| [\d,]+ \|/);
    });

    it('loses no request through nginx when narwhal reloads (HUP) under load', async function () {
      const why = ensureMigrateReq();
      if (why) {
        console.log(`      SKIPPED: ${why}`);
        this.skip();
      }
      const port = Number(new URL(nginx.url).port);
      const loads = [startLoad(port, { mode: 'fresh', clients: 4, path: '/sync' }), startLoad(port, { mode: 'keepAlive', clients: 4, path: '/sync' })];
      await Promise.all(loads.map((l) => l.progress(100)));
      const reloads = (server.log().match(/Reloaded:/g) ?? []).length;
      server.child.kill('SIGHUP');
      await server.waitForLog(new RegExp(`(Reloaded: [\\s\\S]*){${reloads + 1}}`));
      await Promise.all(loads.map((l) => l.progress(200)));
      const reports = await Promise.all(loads.map((l) => l.stop()));
      const failed = reports.reduce((n, r) => n + r.failed, 0);
      assert.equal(failed, 0, reports.flatMap((r) => r.failures).join(', '));
    });
  });
}

describe('behind nginx, from a proxy narwhal does not trust', function () {
  it('ignores X-Forwarded-* and keeps the peer address', async function () {
    const missing = nginxMissing();
    if (missing) {
      console.log(`      SKIPPED: ${missing}`);
      this.skip();
    }
    const server = await serve(fixture('echo.ts'), ['--workers', '1', '--forwarded-allow-ips', '192.0.2.1']);
    const nginx = await startNginx(server.port);
    try {
      const echo = await json(fetch(`${nginx.url}/echo`, { headers: { 'x-forwarded-for': '198.51.100.23' } }));
      assert.match(echo.url, /^http:\/\/127\.0\.0\.1(:\d+)?\/echo$/, 'no https, no forwarded host');
      assert.equal(echo.remoteAddr.hostname, '127.0.0.1');
    } finally {
      await nginx.stop();
      await server.stop();
    }
  });
});

describe('PROXY protocol v2 (--proxy-protocol)', () => {
  /** A PROXY v2 header saying the client is 203.0.113.50:4321, then a plain HTTP request. */
  function proxied(path: string): Buffer {
    const header = Buffer.from([
      0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a, // signature
      0x21, // version 2, PROXY
      0x11, // TCP over IPv4
      0x00, 0x0c, // 12 bytes of addresses
      203, 0, 113, 50, // source
      127, 0, 0, 1, // destination
      0x10, 0xe1, // source port 4321
      0x1f, 0x90, // destination port 8080
    ]);
    return Buffer.concat([header, Buffer.from(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`)]);
  }

  it('takes the client address from the header only when asked to', async () => {
    const on = await serve(fixture('echo.ts'), ['--workers', '1', '--proxy-protocol']);
    const off = await serve(fixture('echo.ts'), ['--workers', '1']);
    try {
      const believed = JSON.parse((await rawExchange(on.port, proxied('/echo'))).responses[0]!.body.toString());
      assert.equal(believed.remoteAddr.hostname, '203.0.113.50');
      const ignored = JSON.parse((await rawExchange(off.port, proxied('/echo'))).responses[0]!.body.toString());
      assert.equal(ignored.remoteAddr.hostname, '127.0.0.1', 'off by default: a client cannot claim an address');
    } finally {
      await on.stop();
      await off.stop();
    }
  });

  it('ignores the header from a peer outside --forwarded-allow-ips', async () => {
    const server = await serve(fixture('echo.ts'), ['--workers', '1', '--proxy-protocol', '--forwarded-allow-ips', '192.0.2.9']);
    try {
      const echo = JSON.parse((await rawExchange(server.port, proxied('/echo'))).responses[0]!.body.toString());
      assert.equal(echo.remoteAddr.hostname, '127.0.0.1');
    } finally {
      await server.stop();
    }
  });
});
