// The Tornado example: a handler that awaits an HTTP client call. GET /api fetches UPSTREAM_URL
// and answers with its body and status; a slow upstream answers 504, an unreachable one 502,
// each with a JSON error body.
//   npx serve apps/httpbin.ts --bind 127.0.0.1:8001 &
//   npx serve apps/proxy.ts   then   curl -i localhost:8000/api
const UPSTREAM_URL = process.env.UPSTREAM_URL ?? 'http://127.0.0.1:8001/get';
const TIMEOUT_MS = Number(process.env.UPSTREAM_TIMEOUT_MS ?? 5000);

function error(status: number, message: string): Response {
  return Response.json({ error: message, upstream: UPSTREAM_URL }, { status });
}

export default {
  async fetch(request: Request): Promise<Response> {
    if (new URL(request.url).pathname !== '/api') return error(404, 'not found: try GET /api');
    let upstream: Response;
    try {
      upstream = await fetch(UPSTREAM_URL, { signal: AbortSignal.timeout(TIMEOUT_MS), headers: { accept: 'application/json' } });
    } catch (cause) {
      if ((cause as Error).name === 'TimeoutError') return error(504, `upstream did not answer within ${TIMEOUT_MS} ms`);
      return error(502, `upstream unreachable: ${String((cause as Error).cause ?? cause)}`);
    }
    const body = await upstream.arrayBuffer();
    return new Response(body, { status: upstream.status, headers: { 'content-type': upstream.headers.get('content-type') ?? 'application/octet-stream' } });
  },
};
