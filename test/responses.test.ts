// Real Response features keep working with narwhal's light Response in the worker threads.
import assert from 'node:assert/strict';
import { fixture, rawExchange, serve, type Served } from './helpers.js';

describe('Response inside narwhal workers', () => {
  let server: Served;
  before(async () => {
    server = await serve(fixture('responses.ts'), ['--workers', '1']);
  });
  after(async () => {
    await server.stop();
  });

  const raw = async (path: string) => (await rawExchange(server.port, `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${server.port}\r\n\r\n`)).responses[0]!;

  it('behaves as a Response: instanceof, ok, statusText, type, validation, default content types', async () => {
    const facts = (await (await fetch(`${server.url}/facts`)).json()) as Record<string, unknown>;
    // The same errors undici's Response throws, so the app sees no difference.
    assert.match(String(facts.badStatus), /^RangeError: .*status/);
    assert.match(String(facts.bodyOn204), /^TypeError: .*204/);
    assert.match(String(facts.badHeader), /^TypeError: [\s\S]*invalid header value/);
    delete facts.badStatus;
    delete facts.bodyOn204;
    delete facts.badHeader;
    assert.deepEqual(facts, {
      instanceof: true,
      toString: '[object Response]',
      ok: [true, false],
      statusText: 'Made',
      type: 'default',
      contentType: 'text/plain;charset=UTF-8',
      jsonType: 'application/json',
      arrayBuffer: 2,
      blob: 'blobby',
    });
  });

  it('sends headers the app mutated after construction', async () => {
    const response = await raw('/mutated');
    assert.equal(response.header('x-a'), '1');
    assert.equal(response.header('x-b'), '2');
    assert.equal(response.header('set-cookie'), 'c=3');
    assert.equal(response.body.toString(), 'mutated');
  });

  it('sends Response.redirect and Response.json with their status and headers', async () => {
    const redirect = await raw('/redirect');
    assert.equal(redirect.statusLine, 'HTTP/1.1 307 Temporary Redirect');
    assert.equal(redirect.header('location'), 'http://example.test/elsewhere');
    const json = await raw('/json');
    assert.equal(json.status, 201);
    assert.equal(json.header('x-json'), 'yes');
    assert.equal(json.header('content-type'), 'application/json');
    assert.equal(json.body.toString(), '{"ok":true}');
  });

  it('takes headers as an array of pairs, names lower-cased', async () => {
    const response = await raw('/array-headers');
    assert.deepEqual(response.rawHeaders.find(([name]) => name.toLowerCase() === 'x-upper'), ['x-upper', 'kept']);
    assert.equal(response.header('content-type'), 'application/x-three');
    assert.deepEqual([...response.body], [1, 2, 3]);
  });

  it('supports clone(), text(), bodyUsed and body streams', async () => {
    assert.equal(await (await fetch(`${server.url}/read-then-send`)).text(), 'read me / read me / used=true');
    const streamed = await fetch(`${server.url}/body-stream`);
    assert.equal(streamed.headers.get('x-from'), 'stream');
    assert.equal(await streamed.text(), 'through a stream');
  });

  it('treats responses from fetch() as Responses', async () => {
    assert.deepEqual(await (await fetch(`${server.url}/upstream`)).json(), { isResponse: true, status: 200 });
  });
});
