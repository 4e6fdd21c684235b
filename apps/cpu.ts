// CPU-bound work blocks the worker that runs it: that is what workers are for.
// GET /fib?n=30 computes synchronously; with --workers 2 two such requests run side by side.
// A runaway request (n=45) holds its worker for minutes while the other workers keep serving.
//   npx serve apps/cpu.ts --workers 2   then   curl 'localhost:8000/fib?n=32'
import { threadId } from 'node:worker_threads';

const MAX_N = 45;

function fib(n: number): number {
  return n < 2 ? n : fib(n - 1) + fib(n - 2);
}

export default {
  fetch(request: Request): Response {
    const url = new URL(request.url);
    if (url.pathname === '/whoami') return Response.json({ thread: threadId });
    if (url.pathname !== '/fib') return new Response('try GET /fib?n=30\n', { status: 404 });
    const n = Number(url.searchParams.get('n') ?? 30);
    if (!Number.isInteger(n) || n < 0 || n > MAX_N) return Response.json({ error: `n must be 0..${MAX_N}` }, { status: 400 });
    const started = performance.now();
    const value = fib(n);
    return Response.json({ n, value, ms: Math.round(performance.now() - started), thread: threadId });
  },
};
