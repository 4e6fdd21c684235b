// Request limits: a clear status, nothing else lost, and the worker keeps serving.
import assert from 'node:assert/strict';
import { fixture, rawExchange, serve, type Served } from './helpers.js';

describe('request limits', () => {
  let server: Served;
  before(async () => {
    server = await serve(fixture('echo.ts'), ['--workers', '1', '--limit-request-body', '1000', '--limit-request-fields', '10', '--limit-request-field-size', '100', '--limit-concurrency', '2']);
  });
  after(async () => {
    await server.stop();
  });

  const raw = (text: string) => rawExchange(server.port, text, { count: 2 });
  const stillServing = async () => assert.equal((await fetch(`${server.url}/sync`)).status, 200);

  it('answers 413 to a declared body over --limit-request-body, telling the client to close', async () => {
    const { responses } = await rawExchange(server.port, `POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2000\r\n\r\n${'a'.repeat(2000)}`);
    assert.equal(responses[0]!.statusLine, 'HTTP/1.1 413 Payload Too Large');
    assert.equal(responses[0]!.header('connection'), 'close');
    await stillServing();
  });

  it('counts a chunked body as it streams in, and answers 413 past the limit', async () => {
    const chunk = 'b'.repeat(600);
    const { responses } = await rawExchange(server.port, `POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n258\r\n${chunk}\r\n258\r\n${chunk}\r\n0\r\n\r\n`);
    assert.equal(responses[0]!.status, 413);
    await server.waitForLog(/request body over 1000 bytes \(--limit-request-body\)/);
    await stillServing();
  });

  it('lets a body within the limit through', async () => {
    const response = await fetch(`${server.url}/echo`, { method: 'POST', body: 'c'.repeat(900) });
    assert.equal((await response.json() as { body: string }).body.length, 900);
  });

  it('answers 431 to too many header fields or too large a field', async () => {
    const many = Array.from({ length: 12 }, (_, i) => `X-H${i}: ${i}\r\n`).join('');
    assert.equal((await raw(`GET /sync HTTP/1.1\r\nHost: x\r\n${many}\r\n`)).responses[0]!.statusLine, 'HTTP/1.1 431 Request Header Fields Too Large');
    assert.equal((await raw(`GET /sync HTTP/1.1\r\nHost: x\r\nX-Big: ${'d'.repeat(200)}\r\n\r\n`)).responses[0]!.status, 431);
    await stillServing();
  });

  it('answers 503 with retry-after beyond --limit-concurrency per worker', async () => {
    const slow = [fetch(`${server.url}/sleep?ms=600&tag=one`), fetch(`${server.url}/sleep?ms=600&tag=two`)];
    await server.waitForLog(/app event: sleep started one/);
    await server.waitForLog(/app event: sleep started two/);
    const third = await fetch(`${server.url}/sync`);
    assert.equal(third.status, 503);
    assert.equal(third.headers.get('retry-after'), '1');
    assert.deepEqual(await Promise.all(slow.map(async (r) => (await r).status)), [200, 200]);
    await stillServing();
  });
});
