// Server-sent events: GET /events?n=5&interval=100 streams n events, one every interval ms.
// A client that disconnects cancels the stream, and the producer stops at once.
//   npx serve apps/sse.ts   then   curl -N 'localhost:8000/events?n=5&interval=500'
const MAX_EVENTS = 10_000;

function events(n: number, intervalMs: number): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  let timer: ReturnType<typeof setInterval> | undefined;
  let sent = 0;
  return new ReadableStream({
    start(controller) {
      const tick = () => {
        controller.enqueue(encoder.encode(`id: ${sent}\nevent: tick\ndata: ${JSON.stringify({ n: sent, at: Date.now() })}\n\n`));
        sent += 1;
        if (sent < n) return;
        clearInterval(timer);
        controller.close();
      };
      tick();
      if (sent < n) timer = setInterval(tick, intervalMs);
    },
    cancel() {
      clearInterval(timer);
      console.error(`sse: client went away after ${sent} of ${n} events; producer stopped`);
    },
  });
}

export default {
  fetch(request: Request): Response {
    const url = new URL(request.url);
    if (url.pathname !== '/events') return new Response('try GET /events?n=5&interval=100\n', { status: 404 });
    const n = Math.min(MAX_EVENTS, Math.max(1, Number(url.searchParams.get('n') ?? 5)));
    const interval = Math.max(1, Number(url.searchParams.get('interval') ?? 100));
    return new Response(events(n, interval), {
      headers: { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' },
    });
  },
};
