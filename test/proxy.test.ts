// Behind a proxy: X-Forwarded-* from trusted peers only, and a real nginx with the shipped config.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { fixture, rawExchange, serve, type Served } from './helpers.js';
import { nginxMissing, startNginx, type Nginx } from './nginx.js';

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
    const { runServe } = await import('./helpers.js');
    const { code, stderr } = await runServe([fixture('echo.ts'), '--forwarded-allow-ips', '10.0.0.0/99']);
    assert.equal(code, 2);
    assert.match(stderr, /--forwarded-allow-ips takes IP addresses, CIDR blocks \(10\.0\.0\.0\/8\) or \*, not '10\.0\.0\.0\/99'/);
  });
});

describe('behind nginx with deploy/nginx.conf', function () {
  let server: Served;
  let nginx: Nginx;
  before(async function () {
    const missing = nginxMissing();
    if (missing) {
      console.log(`      SKIPPED: ${missing}`);
      this.skip();
    }
    server = await serve(fixture('echo.ts'), ['--workers', '2']);
    nginx = await startNginx(server.port);
  });
  after(async () => {
    await nginx?.stop();
    await server?.stop();
  });

  it('proxies requests over HTTP/1.1 with the client address, scheme and host', async () => {
    const response = await fetch(`${nginx.url}/echo?via=nginx`, { headers: { 'x-test': 'through' } });
    assert.equal(response.status, 200);
    const echo = await json(response);
    assert.equal(new URL(echo.url).pathname + new URL(echo.url).search, '/echo?via=nginx');
    assert.equal(echo.remoteAddr.hostname, '127.0.0.1');
    const headers = new Map(echo.headers as [string, string][]);
    assert.equal(headers.get('x-forwarded-proto'), 'http');
    assert.equal(headers.get('x-test'), 'through');
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
});
