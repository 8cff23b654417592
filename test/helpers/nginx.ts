/**
 * Debian's nginx running the shipped deploy/nginx/postbox.conf, with only its listen port, its
 * upstream port and its access-log folder changed, inside a minimal nginx.conf of a temp folder.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../src/db/embedded.js';
import { projectRoot } from '../../src/paths.js';
import { waitFor } from './wait.js';

export const SHIPPED_NGINX_CONF = join(projectRoot, 'deploy', 'nginx', 'postbox.conf');

export interface Nginx {
  port: number;
  /** The access log written with the shipped `postbox` log format. */
  accessLog(): string;
  errorLog(): string;
  stop(): Promise<void>;
}

/** The nginx binary, or null when nginx is not installed. */
export function nginxBinary(): string | null {
  for (const candidate of ['/usr/sbin/nginx', '/usr/local/sbin/nginx', '/usr/bin/nginx'])
    if (existsSync(candidate)) return candidate;
  const which = spawnSync('sh', ['-c', 'command -v nginx'], { encoding: 'utf8' });
  return which.status === 0 ? which.stdout.trim() : null;
}

function replaceOnce(text: string, from: string, to: string): string {
  const n = text.split(from).length - 1;
  if (n !== 1) throw new Error(`deploy/nginx/postbox.conf: expected "${from}" once, found it ${n} times`);
  return text.replace(from, to);
}

/** The shipped file with the test's ports and log folder; nothing else changes. */
export function shippedConfFor(listenPort: number, upstreamPort: number, logDir: string): string {
  let conf = readFileSync(SHIPPED_NGINX_CONF, 'utf8');
  conf = replaceOnce(conf, 'listen 8080;', `listen 127.0.0.1:${listenPort};`);
  conf = replaceOnce(conf, 'server 127.0.0.1:3000;', `server 127.0.0.1:${upstreamPort};`);
  conf = replaceOnce(conf, '/var/log/nginx/', `${logDir}/`);
  return conf;
}

export async function startNginx(upstreamPort: number): Promise<Nginx> {
  const binary = nginxBinary();
  if (!binary) throw new Error('nginx is not installed (apt-get install nginx; .ci/run does it)');
  const dir = mkdtempSync(join(tmpdir(), 'postbox-nginx-'));
  chmodSync(dir, 0o755);
  const port = await freePort();
  writeFileSync(join(dir, 'postbox.conf'), shippedConfFor(port, upstreamPort, dir));
  const isRoot = process.getuid?.() === 0;
  writeFileSync(
    join(dir, 'nginx.conf'),
    [
      'daemon off;',
      'worker_processes 1;',
      `pid ${dir}/nginx.pid;`,
      `error_log ${dir}/error.log info;`,
      // As root nginx would switch its workers to `nobody`, who cannot write the temp folders here.
      isRoot ? 'user root;' : '',
      'events { worker_connections 512; }',
      'http {',
      `  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy;`,
      `  fastcgi_temp_path ${dir}/fastcgi; uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;`,
      `  include ${dir}/postbox.conf;`,
      '}',
      '',
    ].join('\n'),
  );
  const child: ChildProcess = spawn(
    binary,
    ['-p', dir, '-e', join(dir, 'error.log'), '-c', join(dir, 'nginx.conf')],
    {
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  let running = true;
  void exited.then(() => (running = false));

  const errorLog = () =>
    existsSync(join(dir, 'error.log')) ? readFileSync(join(dir, 'error.log'), 'utf8') : '';
  try {
    await waitFor(
      () => {
        if (!running) throw new Error(`nginx exited: ${stderr}\n${errorLog()}`);
        return new Promise<boolean>((resolve) => {
          const socket = connect(port, '127.0.0.1');
          socket.on('connect', () => (socket.destroy(), resolve(true)));
          socket.on('error', () => resolve(false));
        });
      },
      { timeoutMs: 15_000, intervalMs: 50, what: 'nginx to listen' },
    );
  } catch (err) {
    child.kill('SIGKILL');
    await exited;
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }

  return {
    port,
    accessLog: () => readFileSync(join(dir, 'postbox.access.log'), 'utf8'),
    errorLog,
    async stop() {
      if (running) child.kill('SIGQUIT'); // graceful: finish open requests
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
