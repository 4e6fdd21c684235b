// The error log: one line per event, gunicorn's layout
//   [2026-11-25 08:30:00 +0000] [12345] [INFO] Booting worker process
// or, with --log-format json, one JSON object per line. Each process and thread writes through
// its own LogFile (stderr by default): no process.stderr proxy, lines never interleave.
import { LogFile } from './logfile.js';
import { LOG_LEVELS, type LogLevel } from './settings.js';

export interface Logger {
  debug(message: string): void;
  info(message: string): void;
  warning(message: string): void;
  error(message: string, error?: unknown): void;
  critical(message: string, error?: unknown): void;
  /** After logrotate (USR1): open the file again. */
  reopen(): void;
}

export type LogFormat = 'text' | 'json';

function pad(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

export function timestamp(date = new Date()): string {
  const day = `${date.getUTCFullYear()}-${pad(date.getUTCMonth() + 1)}-${pad(date.getUTCDate())}`;
  return `${day} ${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())}:${pad(date.getUTCSeconds())} +0000`;
}

function describeError(error: unknown): string {
  if (error instanceof Error) return error.stack ?? `${error.name}: ${error.message}`;
  return String(error);
}

export interface LogTarget {
  readonly logLevel: LogLevel;
  readonly errorLog?: string;
  readonly logFormat?: LogFormat;
}

export function createLogger(target: LogTarget, tag: string = String(process.pid)): Logger {
  const threshold = LOG_LEVELS.indexOf(target.logLevel);
  const file = new LogFile(target.errorLog ?? '-', 2);
  const json = target.logFormat === 'json';
  const emit = (at: LogLevel, message: string, error?: unknown): void => {
    if (LOG_LEVELS.indexOf(at) < threshold) return;
    if (json) {
      const record: Record<string, string> = { time: new Date().toISOString(), level: at, process: tag, message };
      if (error !== undefined) record.error = describeError(error);
      file.write(`${JSON.stringify(record)}\n`);
      return;
    }
    const detail = error === undefined ? '' : `\n${describeError(error)}`;
    file.write(`[${timestamp()}] [${tag}] [${at.toUpperCase()}] ${message}${detail}\n`);
  };
  return {
    debug: (message) => emit('debug', message),
    info: (message) => emit('info', message),
    warning: (message) => emit('warning', message),
    error: (message, error) => emit('error', message, error),
    critical: (message, error) => emit('critical', message, error),
    reopen: () => file.reopen(),
  };
}
