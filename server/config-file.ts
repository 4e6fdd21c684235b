// The config file: narwhal.config.ts (or .mts, .js, .mjs) in the working directory, or the
// file named by --config. It is server configuration, loaded by the arbiter like gunicorn's
// config file, never by the workers. It holds settings (the settings table's names) and the
// server hooks the arbiter calls at lifecycle events.
import { existsSync } from 'node:fs';
import { extname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { UsageError } from './errors.js';
import type { RawSettings } from './config.js';
import { settingNames } from './settings.js';

export const CONFIG_NAMES = ['narwhal.config.ts', 'narwhal.config.mts', 'narwhal.config.js', 'narwhal.config.mjs'];

/** What the arbiter tells hooks. */
export interface HookContext {
  /** The settings in force (for onReload: the new ones). */
  readonly config: object;
}

export interface ServerHooks {
  /** Before the ports are probed and the first worker process starts. */
  onStarting?(context: HookContext): unknown;
  /** Once every worker of the first generation listens. */
  whenReady?(context: HookContext): unknown;
  /** On HUP, TTIN or TTOU, before the new generation starts. */
  onReload?(context: HookContext): unknown;
  /** After a worker process has exited, for whatever reason. */
  workerExit?(context: HookContext & { readonly pid: number; readonly code: number | null; readonly signal: string | null }): unknown;
  /** Just before the arbiter exits. */
  onExit?(context: HookContext & { readonly exitCode: number }): unknown;
}

export const HOOK_NAMES = ['onStarting', 'whenReady', 'onReload', 'workerExit', 'onExit'] as const;

export interface ConfigFile {
  readonly path: string;
  readonly settings: RawSettings;
  readonly hooks: ServerHooks;
}

/** The file to load: --config, else the first narwhal.config.* in the working directory. */
export function findConfigFile(given: string | undefined, cwd: string): string | undefined {
  if (given !== undefined) {
    const path = resolve(cwd, given);
    if (!existsSync(path)) throw new UsageError(`--config ${given}: no such file`);
    return path;
  }
  return CONFIG_NAMES.map((name) => join(cwd, name)).find((path) => existsSync(path));
}

async function importFile(path: string): Promise<Record<string, unknown>> {
  const url = pathToFileURL(path).href;
  // A query string makes the module loader read the file again on every reload.
  const fresh = `${url}?load=${Date.now()}`;
  if (!['.ts', '.mts', '.cts'].includes(extname(path))) return (await import(fresh)) as Record<string, unknown>;
  const { tsImport } = await import('tsx/esm/api');
  return (await tsImport(fresh, import.meta.url)) as Record<string, unknown>;
}

function settingText(value: unknown, key: string, path: string): string | string[] {
  if (Array.isArray(value)) return value.map((item) => settingText(item, key, path) as string);
  if (typeof value === 'string' || typeof value === 'number') return String(value);
  throw new UsageError(`'${key}' in ${path} must be a string or a number, not ${typeof value}`);
}

export async function loadConfigFile(path: string): Promise<ConfigFile> {
  let mod: Record<string, unknown>;
  try {
    mod = await importFile(path);
  } catch (error) {
    throw new UsageError(`Cannot load the config file ${path}: ${error instanceof Error ? error.message : String(error)}`);
  }
  let exported = (mod.default ?? mod) as Record<string, unknown>;
  // A .ts file compiled as CommonJS arrives as default.default (DESIGN.md).
  if (typeof exported.default === 'object' && exported.default !== null) exported = exported.default as Record<string, unknown>;
  const settings: Record<string, string | string[]> = {};
  const hooks: Record<string, unknown> = {};
  const known = new Set<string>(settingNames());
  for (const [key, value] of Object.entries(exported)) {
    if (value === undefined) continue;
    if ((HOOK_NAMES as readonly string[]).includes(key)) {
      if (typeof value !== 'function') throw new UsageError(`'${key}' in ${path} must be a function`);
      hooks[key] = value;
    } else if (known.has(key)) {
      settings[key] = settingText(value, key, path);
    } else {
      throw new UsageError(`Unknown setting '${key}' in ${path}. Settings: ${settingNames().join(', ')}; hooks: ${HOOK_NAMES.join(', ')}`);
    }
  }
  return { path, settings, hooks: hooks as ServerHooks };
}
