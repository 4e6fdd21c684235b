// Loads the user's app in a worker thread and checks, once, that it is a fetch handler.
// TypeScript goes through tsx's tsImport(): on Node 20 `--import tsx` never reaches worker
// threads (DESIGN.md), and tsImport resolves from narwhal's own dependencies, so the user's
// folder needs nothing of ours.
import { extname } from 'node:path';
import { pathToFileURL } from 'node:url';
import { AppLoadError } from '../server/errors.js';

export interface ConnInfo {
  readonly remoteAddr: { readonly hostname: string; readonly port: number; readonly transport: 'tcp' | 'unix' };
}

export type FetchHandler = (request: Request, info: ConnInfo) => Response | Promise<Response>;
type Hook = () => unknown;

export interface App {
  readonly fetch: FetchHandler;
  /** Awaited before the worker takes traffic (open pools, warm caches). */
  readonly startup?: Hook;
  /** Awaited during a graceful stop, after the last request. */
  readonly shutdown?: Hook;
}

export const ACCEPTED_SHAPES = [
  'export default { fetch(request, info) { ... } }',
  'export default app            (any object with a fetch method: Hono, itty-router, ...)',
  'export default function (request, info) { ... }',
  'export function fetch(request, info) { ... }',
].map((shape) => `  ${shape}`).join('\n');

const TYPESCRIPT = new Set(['.ts', '.mts', '.cts', '.tsx']);

async function importModule(file: string): Promise<Record<string, unknown>> {
  const url = pathToFileURL(file).href;
  if (!TYPESCRIPT.has(extname(file))) return (await import(url)) as Record<string, unknown>;
  const { tsImport } = await import('tsx/esm/api');
  return (await tsImport(url, import.meta.url)) as Record<string, unknown>;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return (typeof value === 'object' || typeof value === 'function') && value !== null;
}

function hook(owner: Record<string, unknown>, mod: Record<string, unknown>, name: string, file: string): Hook | undefined {
  // `in`, not a plain read: routers such as itty-router are Proxies that answer every property
  // read with a route-registering function.
  const value = name in owner ? owner[name] : name in mod ? mod[name] : undefined;
  if (value === undefined) return undefined;
  if (typeof value !== 'function') throw new AppLoadError(`${file}: '${name}' must be a function, not ${typeof value}`);
  return () => (value as Hook).call(owner);
}

/** The object that holds fetch: default, default.default (TS compiled as CommonJS), or the module. */
function findHandler(mod: Record<string, unknown>): { owner: Record<string, unknown>; fetch: FetchHandler } | undefined {
  const candidates = [mod.default, isObject(mod.default) ? mod.default.default : undefined, mod];
  for (const candidate of candidates) {
    if (typeof candidate === 'function' && candidate !== mod.fetch) {
      return { owner: mod, fetch: candidate as FetchHandler };
    }
    if (isObject(candidate) && typeof candidate.fetch === 'function') {
      const method = candidate.fetch as FetchHandler;
      return { owner: candidate, fetch: (request, info) => method.call(candidate, request, info) };
    }
  }
  return undefined;
}

function describeExports(mod: Record<string, unknown>): string {
  const names = Object.keys(mod);
  if (names.length === 0) return 'it exports nothing';
  return `it exports ${names.map((name) => `${name} (${typeof mod[name]})`).join(', ')}`;
}

export async function loadApp(file: string): Promise<App> {
  let mod: Record<string, unknown>;
  try {
    mod = await importModule(file);
  } catch (error) {
    const detail = error instanceof Error ? (error.stack ?? error.message) : String(error);
    throw new AppLoadError(`Failed to load ${file}: ${detail}`, { cause: error });
  }
  const found = findHandler(mod);
  if (!found) {
    throw new AppLoadError(`${file} does not export a fetch handler; ${describeExports(mod)}.\nAccepted shapes:\n${ACCEPTED_SHAPES}`);
  }
  return {
    fetch: found.fetch,
    startup: hook(found.owner, mod, 'startup', file),
    shutdown: hook(found.owner, mod, 'shutdown', file),
  };
}
