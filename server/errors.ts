// The error catalogue: every failure narwhal reports on purpose has a stable code and the exit
// code the process ends with. Exit codes follow gunicorn where it has one (3 worker boot failed,
// 4 app load failed); 2 is the shell's convention for bad usage.

export const EXIT = {
  ok: 0,
  portInUse: 1,
  usage: 2,
  boot: 3,
  app: 4,
} as const;

export class NarwhalError extends Error {
  readonly code: string;
  readonly exitCode: number;

  constructor(code: string, exitCode: number, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'NarwhalError';
    this.code = code;
    this.exitCode = exitCode;
  }
}

/** A flag, value or environment variable the user gave is wrong. */
export class UsageError extends NarwhalError {
  constructor(message: string) {
    super('NARWHAL_USAGE', EXIT.usage, message);
  }
}

/** Another program already listens where we were asked to bind. */
export class PortInUseError extends NarwhalError {
  constructor(address: string, cause?: unknown) {
    super('NARWHAL_PORT_IN_USE', EXIT.portInUse, `Connection in use: ${address} (another program listens there)`, { cause });
  }
}

/** The worker could not start: no uWS binding loads, or a listen failed. */
export class BootError extends NarwhalError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('NARWHAL_BOOT', EXIT.boot, message, options);
  }
}

/** The app file is missing, throws while loading, or exports no fetch handler. */
export class AppLoadError extends NarwhalError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('NARWHAL_APP_LOAD', EXIT.app, message, options);
  }
}

/** What crosses a thread or process boundary: structured clone drops Error subclasses. */
export interface FailureReport {
  code: string;
  exitCode: number;
  message: string;
}

export function toFailureReport(error: unknown, fallbackExit: number = EXIT.boot): FailureReport {
  if (error instanceof NarwhalError) {
    return { code: error.code, exitCode: error.exitCode, message: error.message };
  }
  const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
  return { code: 'NARWHAL_BOOT', exitCode: fallbackExit, message };
}
