// An httpbin-compatible subset (https://httpbin.org), with httpbin's JSON shapes. Point httpie
// or curl at it to look at what a client sends and what a server answers:
//   npx serve apps/httpbin.ts      then      http :8000/get a==1   or   curl -i localhost:8000/get?a=1
// Routes: /get /post /put /patch /delete /anything[/...] /headers /ip /user-agent /status/:code
// /delay/:seconds /bytes/:n /stream/:n /drip /redirect/:n /cookies /cookies/set /gzip
import { gzipSync } from 'node:zlib';

interface Info {
  remoteAddr: { hostname: string };
}

type Json = Record<string, unknown>;
const MAX_DELAY_S = 10;
const MAX_BYTES = 100 * 1024;
const MAX_STREAM = 100;

function titleCase(name: string): string {
  return name.replace(/(^|-)([a-z])/g, (_m, dash: string, letter: string) => dash + letter.toUpperCase());
}

function headersOf(request: Request): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of request.headers) out[titleCase(name)] = value;
  return out;
}

/** Query arguments; a repeated key becomes a list, as in httpbin. */
function argsOf(url: URL): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const key of new Set(url.searchParams.keys())) {
    const values = url.searchParams.getAll(key);
    out[key] = values.length === 1 ? values[0]! : values;
  }
  return out;
}

function basics(request: Request, url: URL, info: Info): Json {
  return { args: argsOf(url), headers: headersOf(request), origin: info.remoteAddr.hostname, url: request.url };
}

/** data, files, form and json, as httpbin reports a request body. */
async function bodyOf(request: Request): Promise<Json> {
  const type = request.headers.get('content-type') ?? '';
  const out: Json = { data: '', files: {}, form: {}, json: null };
  if (type.startsWith('multipart/form-data') || type.startsWith('application/x-www-form-urlencoded')) {
    const form: Record<string, string> = {};
    const files: Record<string, string> = {};
    for (const [key, value] of await request.formData()) {
      if (typeof value === 'string') form[key] = value;
      else files[key] = await value.text();
    }
    return { ...out, form, files };
  }
  const data = await request.text();
  let json: unknown = null;
  try {
    json = data ? JSON.parse(data) : null;
  } catch {
    json = null;
  }
  return { ...out, data, json };
}

function json(value: unknown, init?: ResponseInit): Response {
  return new Response(`${JSON.stringify(value, null, 2)}\n`, { ...init, headers: { 'content-type': 'application/json', ...init?.headers } });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function cookiesOf(request: Request): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of (request.headers.get('cookie') ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0) out[part.slice(0, eq).trim()] = decodeURIComponent(part.slice(eq + 1).trim());
  }
  return out;
}

function stream(n: number, request: Request, url: URL, info: Info): Response {
  const encoder = new TextEncoder();
  let id = 0;
  return new Response(
    new ReadableStream({
      pull(controller) {
        controller.enqueue(encoder.encode(`${JSON.stringify({ ...basics(request, url, info), id })}\n`));
        if (++id >= n) controller.close();
      },
    }),
    { headers: { 'content-type': 'application/json' } },
  );
}

function drip(url: URL): Response {
  const bytes = Math.max(0, Number(url.searchParams.get('numbytes') ?? 10));
  const duration = Math.min(MAX_DELAY_S, Math.max(0, Number(url.searchParams.get('duration') ?? 2)));
  const status = Number(url.searchParams.get('code') ?? 200);
  const interval = bytes > 0 ? (duration * 1000) / bytes : 0;
  let sent = 0;
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (sent >= bytes) return controller.close();
      if (sent > 0) await sleep(interval);
      controller.enqueue(new Uint8Array([42]));
      sent += 1;
    },
  });
  return new Response(body, { status, headers: { 'content-type': 'application/octet-stream' } });
}

function bytesResponse(n: number): Response {
  const out = new Uint8Array(Math.min(n, MAX_BYTES));
  crypto.getRandomValues(out);
  return new Response(out, { headers: { 'content-type': 'application/octet-stream' } });
}

const BODY_METHODS: Record<string, string> = { '/post': 'POST', '/put': 'PUT', '/patch': 'PATCH', '/delete': 'DELETE' };

async function route(request: Request, info: Info): Promise<Response> {
  const url = new URL(request.url);
  const path = url.pathname;
  const [, first = '', second = ''] = path.split('/');
  if (path === '/get') return json(basics(request, url, info));
  if (BODY_METHODS[path]) {
    if (request.method !== BODY_METHODS[path]) return json({ error: `use ${BODY_METHODS[path]}` }, { status: 405, headers: { allow: BODY_METHODS[path]! } });
    return json({ ...basics(request, url, info), ...(await bodyOf(request)) });
  }
  if (first === 'anything') return json({ ...basics(request, url, info), ...(await bodyOf(request)), method: request.method });
  if (path === '/headers') return json({ headers: headersOf(request) });
  if (path === '/ip') return json({ origin: info.remoteAddr.hostname });
  if (path === '/user-agent') return json({ 'user-agent': request.headers.get('user-agent') });
  if (first === 'status' && /^\d{3}$/.test(second)) return new Response(null, { status: Number(second) });
  if (first === 'delay') {
    await sleep(Math.min(MAX_DELAY_S, Math.max(0, Number(second) || 0)) * 1000);
    return json(basics(request, url, info));
  }
  if (first === 'bytes') return bytesResponse(Number(second) || 0);
  if (first === 'stream') return stream(Math.min(MAX_STREAM, Math.max(1, Number(second) || 1)), request, url, info);
  if (path === '/drip') return drip(url);
  if (first === 'redirect') {
    const n = Math.max(1, Number(second) || 1);
    return new Response(null, { status: 302, headers: { location: n === 1 ? '/get' : `/redirect/${n - 1}` } });
  }
  if (path === '/cookies') return json({ cookies: cookiesOf(request) });
  if (path === '/cookies/set') {
    const headers = new Headers({ location: '/cookies' });
    for (const [key, value] of url.searchParams) headers.append('set-cookie', `${key}=${encodeURIComponent(value)}; Path=/`);
    return new Response(null, { status: 302, headers });
  }
  if (path === '/gzip') {
    const body = gzipSync(JSON.stringify({ gzipped: true, headers: headersOf(request), method: request.method, origin: info.remoteAddr.hostname }, null, 2));
    return new Response(body, { headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' } });
  }
  return json({ error: 'not found', path }, { status: 404 });
}

export default { fetch: route };
