// Liveness a worker process can read without the thread's help: each worker thread owns a
// small SharedArrayBuffer where it stamps the time every beat and names the request it is
// running. A thread stuck in an endless loop stops stamping, and its last request is still
// written there, so the supervisor can say which request hung it (DESIGN.md: a hung thread can
// run no code of ours, so nothing can be asked of it).

const LABEL_BYTES = 256;
export const HEARTBEAT_BYTES = 8 + 4 + LABEL_BYTES;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

export class Heartbeat {
  readonly #stamp: BigInt64Array;
  readonly #length: Int32Array;
  readonly #label: Uint8Array;

  constructor(buffer: SharedArrayBuffer) {
    this.#stamp = new BigInt64Array(buffer, 0, 1);
    this.#length = new Int32Array(buffer, 8, 1);
    this.#label = new Uint8Array(buffer, 12, LABEL_BYTES);
  }

  static create(): SharedArrayBuffer {
    const buffer = new SharedArrayBuffer(HEARTBEAT_BYTES);
    new Heartbeat(buffer).beat();
    return buffer;
  }

  beat(now = Date.now()): void {
    Atomics.store(this.#stamp, 0, BigInt(now));
  }

  /** Names the request the thread is about to run synchronously: `METHOD url`. */
  enter(method: string, url: string): void {
    const first = encoder.encodeInto(method, this.#label).written;
    this.#label[first] = 32; // space
    const second = encoder.encodeInto(url, this.#label.subarray(first + 1)).written;
    Atomics.store(this.#length, 0, first + 1 + second);
  }

  leave(): void {
    Atomics.store(this.#length, 0, 0);
  }

  /** Milliseconds since the last beat. */
  silence(now = Date.now()): number {
    return now - Number(Atomics.load(this.#stamp, 0));
  }

  /** The request being run, or '' between requests. */
  request(): string {
    const length = Atomics.load(this.#length, 0);
    return length > 0 ? decoder.decode(this.#label.slice(0, length)) : '';
  }
}
