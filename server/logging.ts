// The error log: one line per event, gunicorn's layout
//   [2026-11-25 08:30:00 +0000] [12345] [INFO] Booting worker process
// Lines go straight to file descriptor 2 with one write each, so worker threads bypass the
// main thread's process.stderr proxy and lines from different threads never interleave.
import { writeSync } from 'node:fs';
import { LOG_LEVELS, type LogLevel } from './settings.js';

export interface Logger {
  debug(message: string): void;
  info(message: string): void;
  warning(message: string): void;
  error(message: string, error?: unknown): void;
  critical(message: string, error?: unknown): void;
}

function pad(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

function timestamp(date = new Date()): string {
  const day = `${date.getUTCFullYear()}-${pad(date.getUTCMonth() + 1)}-${pad(date.getUTCDate())}`;
  return `${day} ${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())}:${pad(date.getUTCSeconds())} +0000`;
}

function describeError(error: unknown): string {
  if (error instanceof Error) return error.stack ?? `${error.name}: ${error.message}`;
  return String(error);
}

function writeLine(fd: number, line: string): void {
  const bytes = Buffer.from(line);
  let offset = 0;
  for (let attempt = 0; offset < bytes.length && attempt < 100; attempt++) {
    try {
      offset += writeSync(fd, bytes, offset);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EAGAIN') return;
    }
  }
}

export function createLogger(level: LogLevel, tag: string = String(process.pid), fd = 2): Logger {
  const threshold = LOG_LEVELS.indexOf(level);
  const emit = (at: LogLevel, message: string, error?: unknown): void => {
    if (LOG_LEVELS.indexOf(at) < threshold) return;
    const detail = error === undefined ? '' : `\n${describeError(error)}`;
    writeLine(fd, `[${timestamp()}] [${tag}] [${at.toUpperCase()}] ${message}${detail}\n`);
  };
  return {
    debug: (message) => emit('debug', message),
    info: (message) => emit('info', message),
    warning: (message) => emit('warning', message),
    error: (message, error) => emit('error', message, error),
    critical: (message, error) => emit('critical', message, error),
  };
}
