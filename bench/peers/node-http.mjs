// Peer: plain node:http, the same routes written natively.
import { createServer } from 'node:http';

const HELLO = 'Hello, World!';
// Serialised per request, as the fetch app's Response.json(DOC) does.
const DOC = { items: Array.from({ length: 24 }, (_, i) => ({ id: i, name: `item-${i}`, tags: ['a', 'b'] })) };
const CHUNK = Buffer.alloc(64 * 1024, 120);

function fib(n) {
  return n < 2 ? n : fib(n - 1) + fib(n - 2);
}

async function streamChunks(res) {
  res.writeHead(200, { 'content-type': 'application/octet-stream' });
  for (let i = 0; i < 16; i++) {
    if (!res.write(CHUNK)) await new Promise((resolve) => res.once('drain', resolve));
  }
  res.end();
}

createServer(async (req, res) => {
  switch (req.url) {
    case '/':
      return res.writeHead(200, { 'content-type': 'text/plain', 'content-length': HELLO.length }).end(HELLO);
    case '/json': {
      const text = JSON.stringify(DOC);
      return res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text);
    }
    case '/echo': {
      const parts = [];
      for await (const part of req) parts.push(part);
      const body = Buffer.concat(parts);
      return res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length }).end(body);
    }
    case '/stream':
      return streamChunks(res);
    case '/async':
      await new Promise((resolve) => setTimeout(resolve, 1));
      return res.end('waited');
    case '/cpu':
      return res.end(String(fib(27)));
    default:
      return res.writeHead(404).end('Not Found');
  }
}).listen(Number(process.env.PORT), '127.0.0.1', () => process.stdout.write('ready\n'));
