// The part of the uWebSockets.js API that every binding we load shares (the v20.3x fork's
// docs/index.d.ts is the lowest common denominator). Only workers/ touches these objects.

export type RecognizedString = string | ArrayBuffer | Uint8Array;

export interface UwsRequest {
  getCaseSensitiveMethod(): string;
  getUrl(): string;
  getQuery(): string | undefined;
  getHeader(lowerCaseKey: string): string;
  forEach(cb: (key: string, value: string) => void): void;
}

export interface UwsResponse {
  writeStatus(status: RecognizedString): UwsResponse;
  writeHeader(key: RecognizedString, value: RecognizedString): UwsResponse;
  write(chunk: RecognizedString): boolean;
  end(body?: RecognizedString, closeConnection?: boolean): UwsResponse;
  endWithoutBody(): UwsResponse;
  tryEnd(chunk: RecognizedString, totalSize: number): [boolean, boolean];
  close(): UwsResponse;
  getWriteOffset(): number;
  onWritable(handler: (offset: number) => boolean): UwsResponse;
  onAborted(handler: () => void): UwsResponse;
  onData(handler: (chunk: ArrayBuffer, isLast: boolean) => void): UwsResponse;
  pause(): void;
  resume(): void;
  cork(cb: () => void): UwsResponse;
  getRemoteAddressAsText(): ArrayBuffer;
  getProxiedRemoteAddressAsText(): ArrayBuffer;
  getRemotePort?(): number;
}

export type UwsListenSocket = object;

export interface UwsApp {
  any(pattern: string, handler: (res: UwsResponse, req: UwsRequest) => void): UwsApp;
  listen(host: string, port: number, cb: (socket: UwsListenSocket | false) => void): UwsApp;
  listen_unix(cb: (socket: UwsListenSocket | false) => void, path: string): UwsApp;
  close(): void;
}

export interface UwsModule {
  App(): UwsApp;
  us_listen_socket_close(socket: UwsListenSocket): void;
  _cfg?(flag: string): void;
  LIBUS_LISTEN_EXCLUSIVE_PORT?: number;
}
