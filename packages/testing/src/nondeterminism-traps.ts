/**
 * Traps for hidden non-determinism: while the checker runs workflow code, calls to the wall clock
 * (`Date.now`, `new Date()`, `performance.now`), randomness (`Math.random`, `crypto.randomUUID`),
 * timers (`setTimeout`...), `process.env`, synchronous file reads and `fetch` are recorded with the
 * line of workflow code that made them.
 *
 * The globals are patched once per check (`installTraps`) and only *act* inside a window
 * (`withTraps`), which spans exactly one engine call. The engine takes microtask turns only, so no
 * timer or I/O callback of other code can run inside a window. Outside windows every trap
 * delegates to the original untouched. In a "second process" window the traps also change what
 * they return (a shifted clock, a reseeded `Math.random`) so code that depends on them diverges.
 *
 * Calls made by a function passed to `sideEffect()` are allowed: that is what sideEffect is for.
 */
import fs from "node:fs";
import { createRequire, syncBuiltinESMExports } from "node:module";
import { captureStack, locateUserCode } from "./source-location.ts";

/** One call to a trapped API made by workflow code. */
export interface TrapHit {
  /** The API, e.g. `Date.now()`, `process.env`, `setTimeout()`. */
  api: string;
  /** Extra detail, e.g. the environment variable name. */
  detail: string | undefined;
  /** Where in the workflow code, e.g. `src/order.ts:23:19` (undefined when it could not be told). */
  site: string | undefined;
  /** The library frame the call went through, if the workflow called a library that called the API. */
  via: string | undefined;
}

/** How a window behaves. */
export interface TrapWindow {
  /** Return perturbed values (shifted clock, reseeded random) — the "second process". */
  perturb: boolean;
  /** Milliseconds added to the wall clock when perturbing. */
  clockShiftMs: number;
  /** Replacement for Math.random when perturbing. */
  random: () => number;
  /** APIs the user allowed (e.g. "process.env"). */
  allow: ReadonlySet<string>;
  onHit(hit: TrapHit): void;
}

/** The originals, captured at module load (before any patching). */
export const originals = {
  Date,
  dateNow: Date.now,
  random: Math.random,
  setTimeout: globalThis.setTimeout,
  setInterval: globalThis.setInterval,
  setImmediate: globalThis.setImmediate,
  env: process.env,
};

const nodeRequire = createRequire(import.meta.url);

let active: TrapWindow | null = null;
let installs = 0;
let inHit = false;
let restore: (() => void)[] = [];

/** Yields one macrotask turn using the real setImmediate (not the trapped one). */
export function macrotask(): Promise<void> {
  return new Promise((resolve) => originals.setImmediate(resolve));
}

/**
 * Records a call made by workflow code; returns true when it was one (the trap then acts). Calls
 * from Spool itself, from code without a user frame (other async work that happened to run in the
 * window), inside sideEffect(), or of allowed APIs pass through untouched.
 */
function hit(api: string, detail?: string): boolean {
  const w = active;
  if (!w || inHit) return false;
  if (w.allow.has(api) || w.allow.has(api.replace(/\(\)$/, ""))) return false;
  inHit = true;
  try {
    const where = locateUserCode(captureStack());
    if (where.fromEngine || !where.site) return false;
    // sideEffect(() => Date.now()) is the sanctioned way to record a non-deterministic value.
    // (The engine runs the function in startSideEffect, packages/core/src/replay/steps/side-effect.ts.)
    if (where.engineFrame && /\b(startSideEffect|sideEffect)\b/.test(where.engineFrame)) return false;
    w.onHit({ api, detail, site: where.site, via: where.via });
    return true;
  } finally {
    inHit = false;
  }
}

function wallNow(perturbed: boolean): number {
  const now = originals.dateNow.call(originals.Date);
  return perturbed && active?.perturb ? now + active.clockShiftMs : now;
}

function patch<T extends object, K extends keyof T>(obj: T, key: K, value: T[K]): void {
  const had = Object.hasOwn(obj, key);
  const before = Object.getOwnPropertyDescriptor(obj, key);
  Object.defineProperty(obj, key, {
    value,
    configurable: true,
    writable: true,
    enumerable: before?.enumerable ?? false,
  });
  restore.push(() => {
    if (had && before) Object.defineProperty(obj, key, before);
    else delete (obj as Record<PropertyKey, unknown>)[key as PropertyKey];
  });
}

function neverSettles(): Promise<never> {
  return new Promise<never>(() => undefined);
}

/** A timer handle that schedules nothing (a trapped setTimeout inside workflow code). */
function inertTimer(): unknown {
  const t = {
    ref: () => t,
    unref: () => t,
    hasRef: () => false,
    refresh: () => t,
    close: () => t,
    [Symbol.toPrimitive]: () => 0,
  };
  return t;
}

function install(): void {
  const OrigDate = originals.Date;
  const trappedNow = () => wallNow(active !== null && hit("Date.now()"));
  const DateTrap: DateConstructor = new Proxy(OrigDate, {
    construct(target, args, newTarget): object {
      const nt: Function = newTarget === DateTrap ? target : newTarget;
      if (args.length === 0 && active && hit("new Date()"))
        return Reflect.construct(target, [wallNow(true)], nt);
      return Reflect.construct(target, args, nt);
    },
    apply(target, thisArg, args) {
      if (active && hit("Date()")) return new OrigDate(wallNow(true)).toString();
      return Reflect.apply(target, thisArg, args);
    },
    get(target, prop) {
      if (prop === "now") return trappedNow;
      return Reflect.get(target, prop, target);
    },
  });
  patch(globalThis, "Date", DateTrap);
  patch(OrigDate, "now", trappedNow);

  patch(Math, "random", () => {
    const w = active;
    return w && hit("Math.random()") && w.perturb ? w.random() : originals.random();
  });

  const perf = globalThis.performance;
  const perfNow = perf.now.bind(perf);
  patch(perf, "now", () => {
    const w = active;
    return perfNow() + (w && hit("performance.now()") && w.perturb ? w.clockShiftMs : 0);
  });

  const timerTrap = <F extends (...a: never[]) => unknown>(name: string, orig: F): F =>
    ((...args: never[]) => {
      if (active && hit(`${name}()`)) return inertTimer();
      return orig(...args);
    }) as unknown as F;
  patch(
    globalThis,
    "setTimeout",
    Object.assign(timerTrap("setTimeout", originals.setTimeout), originals.setTimeout),
  );
  patch(
    globalThis,
    "setInterval",
    Object.assign(timerTrap("setInterval", originals.setInterval), originals.setInterval),
  );
  patch(
    globalThis,
    "setImmediate",
    Object.assign(timerTrap("setImmediate", originals.setImmediate), originals.setImmediate),
  );

  const webCrypto = globalThis.crypto;
  if (webCrypto) {
    const uuid = webCrypto.randomUUID.bind(webCrypto);
    const fill = webCrypto.getRandomValues.bind(webCrypto);
    patch(webCrypto, "randomUUID", () => {
      if (active) hit("crypto.randomUUID()");
      return uuid();
    });
    patch(webCrypto, "getRandomValues", (<T extends ArrayBufferView | null>(a: T): T => {
      if (active) hit("crypto.getRandomValues()");
      return fill(a as never) as T;
    }) as typeof webCrypto.getRandomValues);
  }

  const nodeCrypto = nodeRequire("node:crypto") as Record<string, (...a: unknown[]) => unknown>;
  for (const name of ["randomUUID", "randomBytes", "randomInt"] as const) {
    const orig = nodeCrypto[name];
    if (typeof orig !== "function") continue;
    patch(nodeCrypto, name, (...a: unknown[]) => {
      if (active) hit(`crypto.${name}()`);
      return orig.apply(nodeCrypto, a);
    });
  }

  const fsMod = fs as unknown as Record<string, (...a: unknown[]) => unknown>;
  for (const name of ["readFileSync", "existsSync", "statSync", "readdirSync"] as const) {
    const orig = fsMod[name];
    if (typeof orig !== "function") continue;
    patch(fsMod, name, (...a: unknown[]) => {
      if (active) hit(`fs.${name}()`, typeof a[0] === "string" ? a[0] : undefined);
      return orig.apply(fs, a);
    });
  }
  const fsp = fs.promises as unknown as Record<string, (...a: unknown[]) => unknown>;
  for (const name of ["readFile", "readdir", "stat", "writeFile"] as const) {
    const orig = fsp[name];
    if (typeof orig !== "function") continue;
    patch(fsp, name, (...a: unknown[]) => {
      if (active && hit(`fs.promises.${name}()`, typeof a[0] === "string" ? a[0] : undefined))
        return neverSettles();
      return orig.apply(fs.promises, a);
    });
  }
  syncBuiltinESMExports();

  if (typeof globalThis.fetch === "function") {
    const origFetch = globalThis.fetch;
    patch(globalThis, "fetch", ((...a: Parameters<typeof fetch>) => {
      if (active && hit("fetch()", typeof a[0] === "string" ? a[0] : undefined)) return neverSettles();
      return origFetch(...a);
    }) as typeof fetch);
  }

  const env = originals.env;
  const envTrap = new Proxy(env, {
    get(target, prop, receiver) {
      if (active && typeof prop === "string") hit("process.env", prop);
      return Reflect.get(target, prop, receiver);
    },
    has(target, prop) {
      if (active && typeof prop === "string") hit("process.env", prop);
      return Reflect.has(target, prop);
    },
    ownKeys(target) {
      if (active) hit("process.env", "(all keys)");
      return Reflect.ownKeys(target);
    },
  });
  process.env = envTrap;
  restore.push(() => {
    process.env = env;
  });
}

/**
 * Patches the trapped globals (reference-counted: nested checks share one installation). Call
 * `uninstallTraps` in a `finally`.
 */
export function installTraps(): void {
  if (installs++ > 0) return;
  restore = [];
  install();
}

/** Restores the originals once the last installation is released. */
export function uninstallTraps(): void {
  if (installs === 0 || --installs > 0) return;
  for (const r of restore.reverse()) r();
  restore = [];
  syncBuiltinESMExports();
}

/** Runs one engine call with the traps acting; windows do not nest. */
export async function withTraps<T>(window: TrapWindow | null, fn: () => Promise<T>): Promise<T> {
  if (!window) return fn();
  const outer = active;
  active = window;
  try {
    return await fn();
  } finally {
    active = outer;
  }
}
