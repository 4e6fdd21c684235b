// A real nginx (Debian's package) in front of narwhal, configured by the shipped
// deploy/nginx.conf with only its two addresses changed. Tests that need it skip, saying so,
// where nginx is not installed (.ci/run installs it).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, ROOT } from './helpers.js';

export function nginxMissing(): string | undefined {
  const probe = spawnSync('nginx', ['-v'], { encoding: 'utf8' });
  return probe.error ? 'nginx is not installed (apt-get install nginx-light; .ci/run does it)' : undefined;
}

async function accepting(port: number, deadline: number): Promise<void> {
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => (socket.destroy(), resolve(true)));
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nginx did not listen on ${port}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

export interface Nginx {
  readonly url: string;
  stop(): Promise<void>;
}

/** Why nginx cannot terminate TLS in the tests here, or undefined when it can. */
export function opensslMissing(): string | undefined {
  return spawnSync('openssl', ['version']).error ? 'openssl is not installed (apt-get install openssl; .ci/run does it)' : undefined;
}

function selfSignedCertificate(dir: string): { cert: string; key: string } {
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-days', '1', '-keyout', key, '-out', cert], { stdio: 'ignore' });
  if (made.status !== 0) throw new Error('openssl could not make a certificate');
  return { cert, key };
}

export interface NginxOptions {
  /** Replaces the shipped upstream server line (default: 127.0.0.1:upstreamPort). */
  readonly upstream?: string;
  /** Terminate TLS (a self-signed certificate), so requests arrive as https. */
  readonly tls?: boolean;
}

/** nginx with the shipped deploy/nginx.conf; its workers run as www-data, as on a real server. */
export async function startNginx(upstreamPort: number, options: NginxOptions = {}): Promise<Nginx> {
  const dir = mkdtempSync(join(tmpdir(), 'narwhal-nginx-'));
  chmodSync(dir, 0o755);
  const port = await freePort();
  const upstream = options.upstream ?? `server 127.0.0.1:${upstreamPort};`;
  let listen = `listen 127.0.0.1:${port};`;
  if (options.tls) {
    const { cert, key } = selfSignedCertificate(dir);
    listen = `listen 127.0.0.1:${port} ssl;\n    ssl_certificate ${cert};\n    ssl_certificate_key ${key};`;
  }
  const site = readFileSync(join(ROOT, 'deploy/nginx.conf'), 'utf8').replace('server 127.0.0.1:8000;', upstream).replace('listen 80;', listen);
  if (!site.includes(upstream) || !site.includes(listen)) throw new Error('deploy/nginx.conf no longer has the addresses the test replaces');
  writeFileSync(join(dir, 'site.conf'), site);
  const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((kind) => `${kind}_temp_path ${dir}/${kind};`).join(' ');
  writeFileSync(
    join(dir, 'nginx.conf'),
    `${process.getuid?.() === 0 ? 'user www-data;' : ''} worker_processes 1; pid ${dir}/nginx.pid; error_log ${dir}/error.log warn; daemon off;
events { worker_connections 1024; }
http { access_log off; ${temp} include ${dir}/site.conf; }
`,
  );
  const child: ChildProcess = spawn('nginx', ['-p', dir, '-c', join(dir, 'nginx.conf'), '-e', join(dir, 'error.log')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk));
  try {
    await Promise.race([accepting(port, Date.now() + 10_000), once(child, 'exit').then(() => Promise.reject(new Error(`nginx exited: ${stderr}`)))]);
  } catch (error) {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    url: `${options.tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    async stop() {
      if (child.exitCode === null) {
        const exited = once(child, 'exit');
        child.kill('SIGQUIT');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
