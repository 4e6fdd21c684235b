// X-Forwarded-* from trusted proxies only (--forwarded-allow-ips). From any other peer these
// headers are whatever the client wrote, so they change nothing: a client cannot claim another
// address or scheme by sending them.
import { BlockList, isIP } from 'node:net';

export class ProxyTrust {
  readonly #any: boolean;
  readonly #list = new BlockList();

  constructor(allowed: readonly string[]) {
    this.#any = allowed.includes('*');
    for (const entry of allowed) {
      if (entry === '*') continue;
      const [address = '', bits] = entry.split('/');
      const type = isIP(address) === 6 ? 'ipv6' : 'ipv4';
      if (bits === undefined) this.#list.addAddress(address, type);
      else this.#list.addSubnet(address, Number(bits), type);
    }
  }

  trusts(address: string): boolean {
    if (this.#any) return true;
    const family = isIP(address);
    return family !== 0 && this.#list.check(address, family === 6 ? 'ipv6' : 'ipv4');
  }

  /**
   * The client behind a chain of proxies: walking X-Forwarded-For from the right, the first
   * address that is not a trusted proxy (uvicorn's rule). If every hop is trusted, the leftmost.
   */
  client(forwardedFor: string): string | undefined {
    const hops = forwardedFor.split(',').map((hop) => hop.trim()).filter(Boolean);
    for (let i = hops.length - 1; i >= 0; i--) if (!this.trusts(hops[i]!)) return hops[i];
    return hops[0];
  }
}
