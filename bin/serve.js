#!/usr/bin/env node
// The `serve` command. The code is TypeScript compiled to dist/ by `npm install` (prepare).
import { existsSync } from 'node:fs';

const cli = new URL('../dist/server/cli.js', import.meta.url);
if (!existsSync(cli)) {
  process.stderr.write("serve: narwhal is not built; run 'npm install' (or 'npm run build') in its folder\n");
  process.exit(3);
}
const { main } = await import(cli.href);
process.exitCode = await main(process.argv.slice(2), process.env);
