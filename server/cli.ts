// `serve APP [options]`: yargs reads the command line, the settings table defines the options,
// config.ts resolves them, the arbiter runs. Returns the exit code instead of exiting, so tests
// and the bin script stay in charge of the process.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import yargs from 'yargs';
import { Arbiter } from './arbiter.js';
import { bench, benchOptions } from './bench.js';
import { bindingInUse } from './binding-report.js';
import { buildConfig, resolveSettings, type Config, type RawSettings } from './config.js';
import { findConfigFile, loadConfigFile, type ServerHooks } from './config-file.js';
import { AppLoadError, EXIT, NarwhalError, UsageError } from './errors.js';
import { createLogger } from './logging.js';
import { SETTINGS, settingNames, type Env } from './settings.js';
import { formatAddress } from './protocol.js';

const PACKAGE_JSON = new URL('../../package.json', import.meta.url);
const CHECK = fileURLToPath(new URL('../workers/check.js', import.meta.url));

function parser() {
  let cli = yargs()
    .scriptName('serve')
    .command('$0 [app]', 'Serve APP, a module exporting a WHATWG fetch handler, on uWebSockets.js worker threads', (y) =>
      y.positional('app', { type: 'string', describe: 'App module: .ts, .mts, .js, .mjs or .cjs' }),
    )
    .version(false)
    .option('version', { type: 'boolean', describe: 'Print the versions of narwhal, Node and the uWS binding' })
    .option('print-config', { type: 'boolean', describe: 'Print the resolved settings as JSON and exit' })
    .option('check-config', { type: 'boolean', describe: 'Check the settings and that the app loads and exports a fetch handler, then exit' })
    .option('config', { type: 'string', requiresArg: true, describe: 'Config file with settings and server hooks [default: ./narwhal.config.{ts,mts,js,mjs} if present]' })
    .help('help')
    .alias('help', 'h')
    .strict()
    .wrap(100)
    .exitProcess(false);
  for (const name of settingNames()) {
    const spec = SETTINGS[name];
    const boolean = 'boolean' in spec && spec.boolean;
    cli = cli.option(spec.flag, {
      type: boolean ? 'boolean' : 'string',
      array: 'repeatable' in spec && spec.repeatable,
      requiresArg: !boolean,
      alias: 'alias' in spec ? spec.alias : undefined,
      describe: `${spec.help} [env ${spec.env}] [default: ${spec.defaultText}]`,
    });
  }
  return cli;
}

function rawFlags(args: Record<string, unknown>): RawSettings {
  const raw: Record<string, string | string[]> = {};
  for (const name of settingNames()) {
    const value = args[SETTINGS[name].flag];
    if (value !== undefined) raw[name] = Array.isArray(value) ? value.map(String) : String(value);
  }
  return raw;
}

export function versionText(): string {
  const { version } = JSON.parse(readFileSync(PACKAGE_JSON, 'utf8')) as { version: string };
  let binding: string;
  try {
    binding = bindingInUse();
  } catch (error) {
    binding = `none loads\n${(error as Error).message}`;
  }
  return `narwhal ${version}\nnode ${process.version}\nbinding ${binding}`;
}

/** Loads the binding and the app in a child process, as a worker would, and reports. */
function checkConfig(config: Config): number {
  const result = spawnSync(process.execPath, [CHECK, config.app], { stdio: ['ignore', 'inherit', 'inherit'] });
  if (result.status === 0) process.stdout.write(`Config OK: ${config.workers} workers on ${config.bind.map(formatAddress).join(', ')}\n`);
  return result.status ?? EXIT.boot;
}

function checkApp(file: string): void {
  if (!existsSync(file)) throw new AppLoadError(`App not found: ${file}`);
  if (!statSync(file).isFile()) throw new AppLoadError(`App is not a file: ${file}`);
}

/** `serve bench APP | --url URL [options]`: load-test with autocannon (server/bench.ts). */
async function benchMain(argv: readonly string[]): Promise<number> {
  let help = '';
  let args: Record<string, unknown>;
  try {
    args = await yargs()
      .scriptName('serve bench')
      .command('$0 [app]', 'Load-test APP across worker counts, or a running server with --url', (y) => y.positional('app', { type: 'string' }))
      .option('url', { type: 'string', requiresArg: true, describe: 'Measure this running server instead of starting APP' })
      .option('workers', { type: 'string', default: '1', describe: 'Worker counts to measure, comma-separated (1,2,4)' })
      .option('connections', { type: 'string', default: '64', describe: 'Concurrent connections' })
      .option('duration', { type: 'string', default: '10', describe: 'Seconds measured per worker count' })
      .option('warmup', { type: 'string', default: '2', describe: 'Seconds of load before measuring' })
      .option('pipelining', { type: 'string', default: '1', describe: 'Requests in flight per connection' })
      .option('method', { type: 'string', default: 'GET' })
      .option('path', { type: 'string', default: '/', describe: 'Request path (with APP)' })
      .option('header', { type: 'string', array: true, describe: 'Request header Name:value; repeatable' })
      .option('body', { type: 'string', describe: 'Request body, or @FILE' })
      .option('json', { type: 'string', describe: 'Write every figure to this JSON file' })
      .option('html', { type: 'string', describe: 'Write a self-contained HTML report with charts to this file' })
      .option('compare', { type: 'string', describe: 'Print the change against an earlier --json report, with its noise band' })
      .option('fail-on-errors', { type: 'boolean', describe: 'Exit 1 when any request failed or was not 2xx' })
      .strict()
      .help('help')
      .version(false)
      .exitProcess(false)
      .parseAsync([...argv], {}, (error, _parsed, output) => {
        if (error) throw error;
        help = output;
      });
  } catch (error) {
    process.stderr.write(`serve bench: ${(error as Error).message}\nRun 'serve bench --help' for usage.\n`);
    return EXIT.usage;
  }
  if (help) {
    process.stdout.write(`${help}\n`);
    return EXIT.ok;
  }
  try {
    return await bench(benchOptions(args));
  } catch (error) {
    if (!(error instanceof NarwhalError)) throw error;
    process.stderr.write(`serve bench: ${error.message}\n`);
    return error.exitCode;
  }
}

export async function main(argv: readonly string[], env: Env = process.env): Promise<number> {
  if (argv[0] === 'bench') return benchMain(argv.slice(1));
  let args: Record<string, unknown>;
  let help = '';
  try {
    args = await parser().parseAsync([...argv], {}, (error, _parsed, output) => {
      if (error) throw error;
      help = output;
    });
  } catch (error) {
    process.stderr.write(`serve: ${(error as Error).message}\nRun 'serve --help' for usage.\n`);
    return EXIT.usage;
  }
  if (help) {
    process.stdout.write(`${help}\n`);
    return EXIT.ok;
  }
  if (args.version) {
    process.stdout.write(`${versionText()}\n`);
    return EXIT.ok;
  }
  const positional = args.app === undefined ? [] : [String(args.app)];
  try {
    if (positional.length === 0) throw new UsageError('name the app to serve, e.g. serve apps/hello.ts');
    const configPath = findConfigFile(args.config as string | undefined, process.cwd());
    let hooks: ServerHooks = {};
    // Flags, environment and the config file, read again on every reload (HUP).
    const resolveConfig = async (): Promise<Config> => {
      const file = configPath ? await loadConfigFile(configPath) : undefined;
      hooks = file?.hooks ?? {};
      return buildConfig(positional[0]!, resolveSettings(rawFlags(args), env, file?.settings));
    };
    const config = await resolveConfig();
    if (args['print-config']) {
      process.stdout.write(`${JSON.stringify({ ...config, configFile: configPath ?? null, hooks: Object.keys(hooks) }, null, 2)}\n`);
      return EXIT.ok;
    }
    checkApp(config.app);
    if (args['check-config']) return checkConfig(config);
    return await new Arbiter(config, createLogger(config), { hooks: () => hooks, reloadConfig: resolveConfig }).run();
  } catch (error) {
    if (!(error instanceof NarwhalError)) throw error;
    const hint = error instanceof UsageError ? "\nRun 'serve --help' for usage." : '';
    process.stderr.write(`serve: ${error.message}${hint}\n`);
    return error.exitCode;
  }
}
