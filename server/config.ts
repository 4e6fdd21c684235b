// Turns what the user typed into the frozen config every other part reads.
// Precedence lives in one function: flags > environment > config file > defaults.
import { resolve } from 'node:path';
import { SETTINGS, settingNames, type Env, type SettingName, type Settings } from './settings.js';

/** Raw text per setting, as it came from one source (a flag may come several times). */
export type RawSettings = Partial<Record<SettingName, string | readonly string[]>>;

export interface Config extends Settings {
  /** Absolute path of the app module. */
  readonly app: string;
}

type Source = { kind: 'flag' | 'env' | 'file'; raw: string | readonly string[] };

function pick(name: SettingName, flags: RawSettings, env: Env, file: RawSettings): Source | undefined {
  const flag = flags[name];
  if (flag !== undefined) return { kind: 'flag', raw: flag };
  const fromEnv = env[SETTINGS[name].env];
  if (fromEnv !== undefined && fromEnv !== '') return { kind: 'env', raw: fromEnv };
  const fromFile = file[name];
  if (fromFile !== undefined) return { kind: 'file', raw: fromFile };
  return undefined;
}

function describe(name: SettingName, kind: Source['kind']): string {
  const spec = SETTINGS[name];
  if (kind === 'flag') return `--${spec.flag}`;
  if (kind === 'env') return spec.env;
  return `'${name}' in the config file`;
}

function parseOne(name: SettingName, source: Source): unknown {
  const spec = SETTINGS[name] as { parse: (text: string, source: string) => unknown; repeatable?: boolean };
  const label = describe(name, source.kind);
  const texts = typeof source.raw === 'string' ? [source.raw] : source.raw;
  if (!spec.repeatable) return spec.parse(texts[texts.length - 1] ?? '', label);
  return texts.flatMap((text) => spec.parse(text, label) as unknown[]);
}

export function resolveSettings(flags: RawSettings, env: Env, file: RawSettings = {}): Settings {
  const out: Record<string, unknown> = {};
  for (const name of settingNames()) {
    const source = pick(name, flags, env, file);
    out[name] = source ? parseOne(name, source) : SETTINGS[name].default(env);
  }
  return out as unknown as Settings;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}

export function buildConfig(app: string, settings: Settings, cwd: string = process.cwd()): Config {
  return deepFreeze({ ...settings, app: resolve(cwd, app) });
}
