// A log destination every process and thread opens for itself: `-` is stdout or stderr, anything
// else a file opened for appending. Writes are synchronous write(2) calls on the descriptor, so
// worker threads never go through the main thread's process.stdout proxy. A write holds whole
// lines and at most PIPE_BUF bytes, so lines from different threads and processes never
// interleave, not even on a pipe. reopen() is what USR1 does after logrotate moved the file.
import { closeSync, openSync, writeSync } from 'node:fs';

const PIPE_BUF = 4096;

export class LogFile {
  readonly path: string;
  #fd: number;

  /** `path` '-' writes to `standard` (1 or 2). */
  constructor(path: string, standard: 1 | 2) {
    this.path = path;
    this.#fd = path === '-' ? standard : openSync(path, 'a');
  }

  reopen(): void {
    if (this.path === '-') return;
    const old = this.#fd;
    this.#fd = openSync(this.path, 'a');
    closeSync(old);
  }

  /** Writes complete lines (each ending in \n), in as few atomic writes as fit. */
  write(lines: string): void {
    let start = 0;
    while (start < lines.length) {
      let end = lines.length;
      if (Buffer.byteLength(lines.slice(start)) > PIPE_BUF) {
        const cut = lines.lastIndexOf('\n', start + PIPE_BUF - 1);
        end = cut >= start ? cut + 1 : lines.indexOf('\n', start) + 1 || lines.length;
      }
      writeAll(this.#fd, Buffer.from(lines.slice(start, end)));
      start = end;
    }
  }
}

const pause = new Int32Array(new SharedArrayBuffer(4));
/** How long a write may wait for a full pipe (a slow log reader) before the lines are dropped. */
const PATIENCE_MS = 10_000;

/**
 * A non-blocking pipe whose reader is slow answers EAGAIN: wait a millisecond and retry, as a
 * blocking write would, instead of losing the lines.
 */
function writeAll(fd: number, bytes: Buffer): void {
  let offset = 0;
  const deadline = Date.now() + PATIENCE_MS;
  while (offset < bytes.length) {
    try {
      offset += writeSync(fd, bytes, offset);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EAGAIN' || Date.now() > deadline) return;
      Atomics.wait(pause, 0, 0, 1);
    }
  }
}
