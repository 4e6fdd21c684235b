// The fetch <-> HTTP conformance suite, run against 1 and 4 workers: real `serve` processes,
// real sockets, the echo fixture app.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { connect } from 'node:net';
import { once } from 'node:events';
import { fixture, rawExchange, serve, type Served } from './helpers.js';

const ECHO = fixture('echo.ts');

function pattern(n: number, seed = 0): Buffer {
  const out = Buffer.alloc(n);
  for (let i = 0; i < n; i++) out[i] = (i + seed) % 251;
  return out;
}

const sha = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex');
// The echo app's JSON answers, read loosely: the assertions check their shape.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const json = async (response: Response | Promise<Response>): Promise<any> => (await response).json();

for (const workers of [1, 4]) {
  describe(`HTTP conformance with ${workers} worker${workers > 1 ? 's' : ''}`, function () {
    let server: Served;
    before(async () => {
      server = await serve(ECHO, ['--workers', String(workers)]);
    });
    after(async () => {
      assert.equal(await server.stop(), 0, 'graceful stop exits 0');
    });

    const get = (path: string, init?: RequestInit) => fetch(`${server.url}${path}`, init);
    const raw = (text: string, options?: Parameters<typeof rawExchange>[2]) => rawExchange(server.port, text, options);

    describe('requests', () => {
      it('gives the app an absolute url with the raw query, the method and every header', async () => {
        const { responses } = await raw('GET /echo?a=1&b=%20x&a=2 HTTP/1.1\r\nHost: example.test:8080\r\nX-Dup: one\r\nX-Dup: two\r\nX-Case: MiXeD\r\n\r\n');
        const echo = JSON.parse(responses[0]!.body.toString());
        assert.equal(echo.method, 'GET');
        assert.equal(echo.url, 'http://example.test:8080/echo?a=1&b=%20x&a=2');
        assert.equal(echo.search, '?a=1&b=%20x&a=2');
        const headers = new Map(echo.headers as [string, string][]);
        assert.equal(headers.get('x-dup'), 'one, two', 'duplicates joined as Headers does');
        assert.equal(headers.get('x-case'), 'MiXeD');
        assert.equal(headers.get('host'), 'example.test:8080');
        assert.equal(echo.isRequest, true, 'request instanceof Request');
      });

      it('passes the remote address in Deno\'s info.remoteAddr shape', async () => {
        const echo = await json(get('/echo'));
        assert.equal(echo.remoteAddr.hostname, '127.0.0.1');
        assert.equal(echo.remoteAddr.transport, 'tcp');
        assert.equal(typeof echo.remoteAddr.port, 'number');
      });

      for (const method of ['POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']) {
        it(`keeps the ${method} method and its body`, async () => {
          const echo = await json(get('/echo', { method, body: `payload for ${method}` }));
          assert.equal(echo.method, method);
          assert.equal(echo.body, `payload for ${method}`);
        });
      }

      it('reads bodies with json(), arrayBuffer(), blob() and clone()', async () => {
        assert.deepEqual(await (await get('/json', { method: 'POST', body: '{"x":[1,2]}' })).json(), { got: { x: [1, 2] } });
        assert.deepEqual(await (await get('/arraybuffer', { method: 'POST', body: pattern(3000) })).json(), { size: 3000 });
        assert.deepEqual(await (await get('/blob-in', { method: 'POST', body: 'abc', headers: { 'content-type': 'text/x-test' } })).json(), { size: 3, type: 'text/x-test' });
        assert.deepEqual(await (await get('/clone', { method: 'POST', body: 'twice' })).json(), { a: 'twice', b: 'twice', mode: 'cors' });
      });

      it('parses url-encoded and multipart forms with formData()', async () => {
        const urlencoded = await get('/form', { method: 'POST', body: new URLSearchParams({ a: '1', b: 'two words' }) });
        assert.deepEqual(await urlencoded.json(), { a: '1', b: 'two words' });
        const form = new FormData();
        form.append('name', 'narwhal');
        form.append('file', new Blob([pattern(1234)]), 'data.bin');
        assert.deepEqual(await (await get('/form', { method: 'POST', body: form })).json(), { name: 'narwhal', file: 'file:data.bin:1234' });
      });

      it('reads a chunked upload', async () => {
        const { responses } = await raw('POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n7\r\n, world\r\n0\r\n\r\n');
        assert.equal(JSON.parse(responses[0]!.body.toString()).body, 'hello, world');
      });

      it('streams a 4 MiB upload to the app as it arrives', async () => {
        const body = pattern(4 * 1024 * 1024, 3);
        const result = await json(get('/digest', { method: 'POST', body }));
        assert.equal(result.size, body.length);
        assert.equal(result.sha256, sha(body));
        assert.ok(result.chunks > 1, `the body came in ${result.chunks} chunk(s): it was buffered whole`);
      });

      it('echoes a request body stream straight back as the response body', async () => {
        const body = pattern(1024 * 1024, 5);
        const response = await get('/stream-echo', { method: 'POST', body });
        assert.equal(sha(new Uint8Array(await response.arrayBuffer())), sha(body));
      });

      it('answers 400 to conflicting Content-Length headers (request smuggling)', async () => {
        // count 2: wait for the close that must follow the one response
        const { responses, closed } = await raw('POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 5\r\n\r\nabcde', { count: 2 });
        assert.equal(responses[0]!.status, 400);
        assert.ok(closed);
      });
    });

    describe('responses', () => {
      it('sends the reason phrase with the status', async () => {
        assert.equal((await raw('GET /reason HTTP/1.1\r\nHost: x\r\n\r\n')).responses[0]!.statusLine, "HTTP/1.1 418 I'm a Teapot");
        assert.equal((await raw('GET /sync HTTP/1.1\r\nHost: x\r\n\r\n')).responses[0]!.statusLine, 'HTTP/1.1 200 OK');
        assert.equal((await raw('GET /custom-reason HTTP/1.1\r\nHost: x\r\n\r\n')).responses[0]!.statusLine, 'HTTP/1.1 299 Quite Fine');
      });

      it('keeps several set-cookie headers separate', async () => {
        const response = (await raw('GET /cookies HTTP/1.1\r\nHost: x\r\n\r\n')).responses[0]!;
        assert.deepEqual(response.headerAll('set-cookie'), ['a=1; Path=/', 'b=2; HttpOnly']);
        assert.deepEqual(response.headerAll('x-multi'), ['one, two']);
      });

      it('never duplicates content-length, transfer-encoding, date or connection set by the app', async () => {
        const response = (await raw('GET /framing HTTP/1.1\r\nHost: x\r\n\r\n')).responses[0]!;
        assert.deepEqual(response.headerAll('content-length'), ['6']);
        assert.deepEqual(response.headerAll('transfer-encoding'), []);
        assert.equal(response.headerAll('date').length, 1);
        assert.notEqual(response.header('date'), 'yesterday');
        assert.equal(response.body.toString(), 'framed');
      });

      it('says Server: narwhal unless the app names itself, and hides uWS', async () => {
        const plain = (await raw('GET /sync HTTP/1.1\r\nHost: x\r\n\r\n')).responses[0]!;
        assert.deepEqual(plain.headerAll('server'), ['narwhal']);
        assert.deepEqual(plain.headerAll('uwebsockets'), []);
        const own = (await raw('GET /server-header HTTP/1.1\r\nHost: x\r\n\r\n')).responses[0]!;
        assert.deepEqual(own.headerAll('server'), ['mine']);
      });

      it('sends string, Uint8Array, ArrayBuffer, Blob and null bodies', async () => {
        const bytes = await get('/bytes?n=300');
        assert.deepEqual(Buffer.from(await bytes.arrayBuffer()), pattern(300));
        assert.equal(bytes.headers.get('content-length'), '300');
        assert.deepEqual(Buffer.from(await (await get('/arraybuffer-out')).arrayBuffer()), pattern(1000));
        const blob = await get('/blob-out');
        assert.equal(blob.headers.get('content-type'), 'text/x-blob');
        assert.equal(await blob.text(), 'blob body');
        const empty = (await raw('GET /null HTTP/1.1\r\nHost: x\r\n\r\n')).responses[0]!;
        assert.equal(empty.header('content-length'), '0');
        assert.equal(empty.body.length, 0);
      });

      it('answers HEAD with the headers and content-length but no body', async () => {
        const { responses } = await raw('HEAD /bytes?n=300 HTTP/1.1\r\nHost: x\r\n\r\nGET /sync HTTP/1.1\r\nHost: x\r\n\r\n', { count: 2, heads: [true, false] });
        assert.equal(responses[0]!.status, 200);
        assert.equal(responses[0]!.header('content-length'), '300');
        assert.equal(responses[0]!.body.length, 0);
        assert.match(responses[1]!.body.toString(), /^thread \d+$/, 'the next response follows the HEAD head directly');
      });

      for (const code of [204, 304]) {
        it(`sends ${code} without a body or content-length`, async () => {
          const { responses } = await raw(`GET /status?code=${code}&body=ignored HTTP/1.1\r\nHost: x\r\n\r\nGET /sync HTTP/1.1\r\nHost: x\r\n\r\n`, { count: 2 });
          assert.equal(responses[0]!.status, code);
          assert.deepEqual(responses[0]!.headerAll('content-length'), []);
          assert.equal(responses[0]!.header('etag'), '"v1"');
          assert.match(responses[1]!.body.toString(), /^thread \d+$/);
        });
      }

      it('sends an 8 MiB body whole and an 8 MiB stream intact', async () => {
        const whole = await get('/big?mb=8');
        assert.equal(whole.headers.get('content-length'), String(8 * 1024 * 1024));
        assert.equal(sha(new Uint8Array(await whole.arrayBuffer())), sha(pattern(8 * 1024 * 1024, 7)));
        const streamed = new Uint8Array(await (await get('/big-stream?mb=8')).arrayBuffer());
        assert.equal(streamed.byteLength, 8 * 1024 * 1024);
      });

      it('delivers a streamed body incrementally, chunk by chunk', async () => {
        const response = await get('/slow-stream?chunks=4&delay=250');
        assert.equal(response.headers.get('transfer-encoding'), 'chunked');
        const reader = response.body!.getReader();
        const first = await reader.read();
        const firstAt = Date.now();
        assert.match(new TextDecoder().decode(first.value), /^chunk 0/);
        let text = '';
        for (let part = await reader.read(); !part.done; part = await reader.read()) text += new TextDecoder().decode(part.value);
        // Each chunk carries the time the app produced it (same machine, same clock): the first
        // must have arrived before the second even existed.
        const secondProducedAt = Number(/chunk 1 at (\d+)/.exec(text)?.[1]);
        assert.ok(firstAt < secondProducedAt, `chunk 0 arrived at ${firstAt}, after chunk 1 was produced at ${secondProducedAt}`);
        assert.match(text, /chunk 3/);
      });

      it('answers pipelined requests in order', async () => {
        const three = 'GET /sync HTTP/1.1\r\nHost: x\r\n\r\nGET /echo?n=2 HTTP/1.1\r\nHost: x\r\n\r\nGET /bytes?n=5 HTTP/1.1\r\nHost: x\r\n\r\n';
        const { responses } = await raw(three, { count: 3 });
        assert.match(responses[0]!.body.toString(), /^thread/);
        assert.equal(JSON.parse(responses[1]!.body.toString()).url, 'http://x/echo?n=2');
        assert.deepEqual(responses[2]!.body, pattern(5));
      });
    });

    describe('app errors', () => {
      for (const path of ['/throw', '/reject', '/not-a-response']) {
        it(`answers 500 when the app fails (${path}) and keeps serving`, async () => {
          const response = await get(path);
          assert.equal(response.status, 500);
          assert.equal(await response.text(), 'Internal Server Error');
          assert.equal((await get('/sync')).status, 200);
        });
      }

      it('logs the failure with its stack', async () => {
        await get('/throw');
        await server.waitForLog(/Error handling request GET http:\/\/127\.0\.0\.1:\d+\/throw\nError: boom from the app\n\s+at /);
      });

      it('closes the connection when a stream fails after the head was sent', async () => {
        const { closed, raw: bytes } = await raw('GET /throw-mid-stream HTTP/1.1\r\nHost: x\r\n\r\n', { count: 2 });
        assert.ok(closed, 'connection closed');
        assert.match(bytes.toString('latin1'), /^HTTP\/1\.1 200 OK/);
        assert.ok(!bytes.toString('latin1').endsWith('0\r\n\r\n'), 'the chunked body must not look complete');
        assert.equal((await get('/sync')).status, 200);
      });
    });
  });
}

describe('clients that go away (1 worker)', function () {
  let server: Served;
  before(async () => {
    server = await serve(ECHO, ['--workers', '1']);
  });
  after(async () => {
    await server.stop();
  });

  async function openAndDrop(path: string, waitForBytes: boolean): Promise<void> {
    const socket = connect(server.port, '127.0.0.1');
    await once(socket, 'connect');
    socket.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`);
    if (waitForBytes) await once(socket, 'data');
    socket.destroy();
  }

  const eventually = (event: string) => server.waitForLog(new RegExp(`app event: ${event}`), 5000);

  it('cancels the response stream when the client disconnects mid-response', async () => {
    await openAndDrop('/forever', true);
    await eventually('forever-cancelled');
  });

  it('aborts request.signal when the client disconnects before the response', async () => {
    await openAndDrop('/hang', false);
    await eventually('hang-aborted');
  });

  it('replaces a worker after an uncaught exception from a timer and keeps serving', async () => {
    const crashed = Number((await (await fetch(`${server.url}/crash-later`)).text()).split(' ')[1]);
    await server.waitForLog(/CRITICAL\] Uncaught exception in worker thread \d+; draining it[\s\S]*Error: thrown from a timer/);
    await server.waitForLog(/Worker 1 exited .*; starting a new one[\s\S]*Worker 1 listening/);
    const serving = Number((await (await fetch(`${server.url}/sync`)).text()).split(' ')[1]);
    assert.notEqual(serving, crashed, 'a fresh thread serves now');
    assert.equal(server.child.exitCode, null, 'the server is still up');
  });
});

describe('slow readers (backpressure)', function () {
  let server: Served;
  before(async () => {
    server = await serve(ECHO, ['--workers', '1']);
  });
  after(async () => {
    await server.stop();
  });

  /** Reads a response on a raw socket, pausing after every read as a slow client does. */
  function slowRead(path: string): Promise<number> {
    return new Promise((resolve, reject) => {
      const socket = connect(server.port, '127.0.0.1');
      let received = 0;
      socket.write(`GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
      socket.on('data', (chunk: Buffer) => {
        received += chunk.length;
        socket.pause();
        setTimeout(() => socket.resume(), 2);
      });
      socket.on('close', () => resolve(received));
      socket.on('error', reject);
    });
  }

  for (const path of ['/big?mb=8', '/big-stream?mb=8']) {
    it(`delivers all of ${path} to a client that reads slowly`, async () => {
      const received = await slowRead(path);
      assert.ok(received > 8 * 1024 * 1024, `received ${received} bytes`);
    });
  }
});
