// Peer: raw uWebSockets.js on the same binding narwhal loads, the same routes written natively.
// The ceiling any adapter on this binding can reach.
import { resolveBinding, loadBinding } from '../../dist/workers/binding.js';

const uws = loadBinding(resolveBinding().path);
uws._cfg?.('silent');
const HELLO = 'Hello, World!';
// Serialised per request, as the fetch app's Response.json(DOC) does.
const DOC = { items: Array.from({ length: 24 }, (_, i) => ({ id: i, name: `item-${i}`, tags: ['a', 'b'] })) };
const CHUNK = new Uint8Array(64 * 1024).fill(120);

function fib(n) {
  return n < 2 ? n : fib(n - 1) + fib(n - 2);
}

function streamChunks(res, left) {
  // write() with onWritable backpressure, as a careful uWS user would.
  while (left > 0) {
    left -= 1;
    if (!res.write(CHUNK)) {
      res.onWritable(() => {
        res.cork(() => streamChunks(res, left));
        return true;
      });
      return;
    }
  }
  res.end();
}

uws
  .App()
  .get('/', (res) => res.writeHeader('content-type', 'text/plain').end(HELLO))
  .get('/json', (res) => res.writeHeader('content-type', 'application/json').end(JSON.stringify(DOC)))
  .post('/echo', (res) => {
    const parts = [];
    res.onAborted(() => {});
    res.onData((chunk, last) => {
      parts.push(Buffer.from(chunk.slice(0)));
      if (last) res.cork(() => res.writeHeader('content-type', 'application/octet-stream').end(Buffer.concat(parts)));
    });
  })
  .get('/stream', (res) => {
    res.onAborted(() => {});
    res.writeHeader('content-type', 'application/octet-stream');
    streamChunks(res, 16);
  })
  .get('/async', (res) => {
    let aborted = false;
    res.onAborted(() => (aborted = true));
    setTimeout(() => aborted || res.cork(() => res.end('waited')), 1);
  })
  .get('/cpu', (res) => res.end(String(fib(27))))
  .any('/*', (res) => res.writeStatus('404 Not Found').end('Not Found'))
  .listen('127.0.0.1', Number(process.env.PORT), (socket) => {
    if (!socket) throw new Error('raw uWS could not listen');
    process.stdout.write('ready\n');
  });
