// The aiohttp example: many upstream requests at once with Promise.all (asyncio.gather).
// GET /?n=10 fires n concurrent requests to UPSTREAM_URL over kept-alive connections and
// answers { "sizes": [...], "ms": total }. n is capped at MAX_FANOUT (400 above it).
//   npx serve apps/httpbin.ts --bind 127.0.0.1:8001 &
//   npx serve apps/fanout.ts   then   curl 'localhost:8000/?n=20'
const UPSTREAM_URL = process.env.UPSTREAM_URL ?? 'http://127.0.0.1:8001/get';
const MAX_FANOUT = 100;

export default {
  async fetch(request: Request): Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname !== '/') return Response.json({ error: 'not found: try GET /?n=10' }, { status: 404 });
    const n = Number(url.searchParams.get('n') ?? 10);
    if (!Number.isInteger(n) || n < 1 || n > MAX_FANOUT) {
      return Response.json({ error: `n must be a whole number from 1 to ${MAX_FANOUT}` }, { status: 400 });
    }
    const started = performance.now();
    try {
      // Node's fetch keeps upstream connections alive and reuses them across requests.
      const sizes = await Promise.all(
        Array.from({ length: n }, async () => (await (await fetch(UPSTREAM_URL)).arrayBuffer()).byteLength),
      );
      return Response.json({ sizes, ms: Math.round(performance.now() - started) });
    } catch (cause) {
      return Response.json({ error: `upstream failed: ${String((cause as Error).cause ?? cause)}` }, { status: 502 });
    }
  },
};
