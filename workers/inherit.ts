// The lazy facade technique shared by the light Request and Response (srvx's lazyInherit):
// every property of the native prototype that the facade does not define itself forwards to a
// native object the facade builds on first use.

export function forwardToNative<T extends object>(facade: { prototype: T }, native: { prototype: object }, nativeOf: (self: T) => object, tag: string): void {
  const proto = facade.prototype;
  for (const [name, descriptor] of Object.entries(Object.getOwnPropertyDescriptors(native.prototype))) {
    if (name === 'constructor' || Object.hasOwn(proto, name)) continue;
    const forward: PropertyDescriptor = { configurable: true, enumerable: descriptor.enumerable ?? false };
    if (descriptor.get) {
      forward.get = function (this: T) {
        return Reflect.get(nativeOf(this), name);
      };
    } else if (typeof descriptor.value === 'function') {
      forward.value = function (this: T, ...args: unknown[]) {
        const target = nativeOf(this);
        return (Reflect.get(target, name) as (...a: unknown[]) => unknown).apply(target, args);
      };
    } else {
      continue;
    }
    Object.defineProperty(proto, name, forward);
  }
  Object.defineProperty(proto, Symbol.toStringTag, { value: tag, configurable: true });
  Object.setPrototypeOf(proto, native.prototype);
}
