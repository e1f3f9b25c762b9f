/**
 * Optional keys left out rather than set to `undefined`. Under `exactOptionalPropertyTypes`
 * an optional key holds a value or is absent; records built from possibly-undefined values go
 * through `withoutUndefined` once instead of one conditional spread per key.
 */

/** `T` with each optional key also allowed to hold `undefined` (which `withoutUndefined` drops). */
export type Undefinable<T> = {
  [K in keyof T]: Record<never, never> extends Pick<T, K> ? T[K] | undefined : T[K];
};

/**
 * A copy of `value` without the keys whose value is `undefined`, in `value`'s key order (the
 * JSON forms keep a documented key order). Give `T` explicitly: it is the record's type.
 */
export function withoutUndefined<T extends object>(value: Undefinable<T>): T {
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) if (v !== undefined) out[key] = v;
  return out as T;
}
