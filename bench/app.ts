// The benchmark app: one fetch handler with a route per scenario. narwhal and @hono/node-server
// serve this very module; the raw uWS and node:http peers implement the same routes natively.
const HELLO = 'Hello, World!';
// A 1 KiB JSON document.
const DOC = { items: Array.from({ length: 24 }, (_, i) => ({ id: i, name: `item-${i}`, tags: ['a', 'b'] })) };
export const STREAM_CHUNK = 64 * 1024;
export const STREAM_CHUNKS = 16; // 1 MiB

function fib(n: number): number {
  return n < 2 ? n : fib(n - 1) + fib(n - 2);
}

function stream(): ReadableStream<Uint8Array> {
  const chunk = new Uint8Array(STREAM_CHUNK).fill(120);
  let sent = 0;
  return new ReadableStream({
    pull(controller) {
      controller.enqueue(chunk);
      if (++sent === STREAM_CHUNKS) controller.close();
    },
  });
}

export default {
  async fetch(request: Request): Promise<Response> {
    const { pathname } = new URL(request.url);
    switch (pathname) {
      case '/':
        return new Response(HELLO, { headers: { 'content-type': 'text/plain' } });
      case '/json':
        return Response.json(DOC);
      case '/echo':
        return new Response(await request.arrayBuffer(), { headers: { 'content-type': 'application/octet-stream' } });
      case '/stream':
        return new Response(stream(), { headers: { 'content-type': 'application/octet-stream' } });
      case '/async':
        await new Promise((resolve) => setTimeout(resolve, 1));
        return new Response('waited');
      case '/cpu':
        return new Response(String(fib(27)));
      default:
        return new Response('Not Found', { status: 404 });
    }
  },
};
