// `serve APP --check-config`: a short-lived child process loads the uWS binding and the app
// once, checks the app's shape, and exits (0, or the exit code of what failed). The arbiter
// itself never loads either.
import { pathToFileURL } from 'node:url';
import { toFailureReport } from '../server/errors.js';
import { loadApp } from './app.js';
import { resolveBinding } from './binding.js';

async function check(app: string): Promise<number> {
  try {
    const binding = resolveBinding();
    const loaded = await loadApp(app);
    const hooks = (['startup', 'shutdown'] as const).filter((name) => loaded[name]);
    process.stdout.write(`App ${app} exports a fetch handler${hooks.length ? ` and ${hooks.join(', ')}` : ''}; binding ${binding.name} ${binding.version}\n`);
    return 0;
  } catch (error) {
    const report = toFailureReport(error);
    process.stderr.write(`${report.message}\n`);
    return report.exitCode;
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await check(process.argv[2] ?? '');
  // The app may have left timers or sockets open at import; the check is over either way.
  process.exit();
}
