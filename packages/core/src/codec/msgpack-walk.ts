/**
 * The walk that readies a value for msgpack: it checks every part can be stored, naming the path
 * of anything that cannot (functions, symbols, class instances, cycles, nesting too deep), and
 * swaps what msgpack would lose for the markers and boxes of `msgpack-extensions.ts`. Objects are
 * copied only on the path to something it replaced; plain data is not copied.
 */
import { ValidationError, type ValidationIssue } from "../errors.ts";
import { serializeError } from "./error-serialization.ts";
import { EXT, NEGATIVE_ZERO, NestedBox, UNDEFINED } from "./msgpack-extensions.ts";

const PLAIN_DATA =
  "Pass plain data: objects, arrays, strings, numbers, booleans, null, undefined, Date, Map, Set, BigInt, " +
  "Uint8Array, Error";

/** Depth at which the walk gives up; well below the JS stack limit. */
export const MAX_DEPTH = 256;

type PathSegment = string | number | { label: string; key: string | number };

/** The walk's state: what is walked, where it is, and the containers above it. */
interface Walk {
  /** Names the payload in error messages; its first word roots the path (see rootOf). */
  what: string;
  /** Objects on the current path, for cycle detection. */
  ancestors: object[];
  path: PathSegment[];
  /** Inside an error's details: replace what cannot be stored by a description instead of failing. */
  lenient: boolean;
}

function prepare(v: unknown, w: Walk, depth: number): unknown {
  switch (typeof v) {
    case "string":
    case "boolean":
    case "bigint":
      return v;
    case "number":
      return v === 0 && 1 / v < 0 ? NEGATIVE_ZERO : v;
    case "undefined":
      return UNDEFINED;
    case "object":
      return v === null ? v : prepareObject(v, w, depth);
    default:
      return unsupported(w, v, typeof v === "function" ? "is a function" : "is a symbol");
  }
}

function prepareObject(v: object, w: Walk, depth: number): unknown {
  if (depth > MAX_DEPTH) {
    return unsupported(w, v, `is nested more than ${MAX_DEPTH} levels deep`);
  }
  if (w.ancestors.includes(v)) {
    // ancestors[k] sits at path[0..k), as every container pushes itself once and each child one segment.
    const at = w.ancestors.indexOf(v);
    return unsupported(w, v, `refers back to ${formatPath(rootOf(w), w.path.slice(0, at))} (a cycle)`);
  }
  if (Array.isArray(v)) return prepareArray(v, w, depth);
  const proto = Object.getPrototypeOf(v);
  if (proto === Object.prototype) return preparePlainObject(v as Record<string, unknown>, w, depth);
  if (proto === null) return prepareEntries(v as Record<string, unknown>, w, depth, true);
  if (v instanceof Date || ArrayBuffer.isView(v) || v instanceof ArrayBuffer) return v;
  if (v instanceof Map) return prepareMap(v, w, depth);
  if (v instanceof Set) return prepareSet(v, w, depth);
  if (v instanceof Error) return prepareError(v, w, depth);
  const name = (proto as { constructor?: { name?: unknown } }).constructor?.name;
  const shown = typeof name === "string" && name !== "" ? `class ${name}` : Object.prototype.toString.call(v);
  return unsupported(
    w,
    v,
    `is an instance of ${shown}, whose prototype and methods would be lost. ` +
      "Convert it to plain data first (e.g. an object literal or a toJSON() result)",
  );
}

// Each container below pushes itself on `ancestors` for its children and pops when done. An
// exception abandons the whole walk, so no try/finally is needed (and none is paid for).

function prepareArray(arr: unknown[], w: Walk, depth: number): unknown[] {
  w.ancestors.push(arr);
  let out: unknown[] | undefined;
  const n = arr.length;
  for (let i = 0; i < n; i++) {
    const item = arr[i];
    w.path.push(i);
    const p = prepare(item, w, depth + 1);
    w.path.pop();
    if (out === undefined && !Object.is(p, item)) out = arr.slice(0, i);
    if (out !== undefined) out.push(p);
  }
  w.ancestors.pop();
  return out ?? arr;
}

function preparePlainObject(obj: Record<string, unknown>, w: Walk, depth: number): unknown {
  // msgpack's decoder rejects a `__proto__` key, so such objects travel as an entry list.
  if (Object.hasOwn(obj, "__proto__")) return prepareEntries(obj, w, depth, false);
  const keys = Object.keys(obj);
  w.ancestors.push(obj);
  let out: Record<string, unknown> | undefined;
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i] as string;
    const value = obj[key];
    w.path.push(key);
    const p = prepare(value, w, depth + 1);
    w.path.pop();
    if (out === undefined && !Object.is(p, value)) {
      out = {};
      for (let j = 0; j < i; j++) out[keys[j] as string] = obj[keys[j] as string];
    }
    if (out !== undefined) out[key] = p;
  }
  w.ancestors.pop();
  return out ?? obj;
}

function prepareEntries(obj: Record<string, unknown>, w: Walk, depth: number, nullProto: boolean): NestedBox {
  w.ancestors.push(obj);
  const flat: unknown[] = [nullProto];
  for (const key of Object.keys(obj)) {
    w.path.push(key);
    flat.push(key, prepare(obj[key], w, depth + 1));
    w.path.pop();
  }
  w.ancestors.pop();
  return new NestedBox(EXT.object, flat);
}

function prepareMap(map: Map<unknown, unknown>, w: Walk, depth: number): NestedBox {
  w.ancestors.push(map);
  const flat: unknown[] = [];
  let i = 0;
  for (const [key, value] of map) {
    w.path.push({ label: `<Map key #${i}>`, key: i });
    flat.push(prepare(key, w, depth + 1));
    w.path.pop();
    w.path.push({
      label: `.get(${describeKey(key)})`,
      key: typeof key === "string" || typeof key === "number" ? key : i,
    });
    flat.push(prepare(value, w, depth + 1));
    w.path.pop();
    i++;
  }
  w.ancestors.pop();
  return new NestedBox(EXT.map, flat);
}

function prepareSet(set: Set<unknown>, w: Walk, depth: number): NestedBox {
  w.ancestors.push(set);
  const items: unknown[] = [];
  let i = 0;
  for (const item of set) {
    w.path.push({ label: `<Set item #${i}>`, key: i });
    items.push(prepare(item, w, depth + 1));
    w.path.pop();
    i++;
  }
  w.ancestors.pop();
  return new NestedBox(EXT.set, items);
}

function prepareError(err: Error, w: Walk, depth: number): NestedBox {
  // Error details are diagnostics (an HTTP client's error may hold sockets and functions): keep
  // what can be stored, describe the rest, and never lose the error itself.
  const lenient = w.lenient;
  w.lenient = true;
  w.ancestors.push(err);
  w.path.push({ label: "<error>", key: "<error>" });
  const fields = prepare(serializeError(err), w, depth + 1);
  w.path.pop();
  w.ancestors.pop();
  w.lenient = lenient;
  return new NestedBox(EXT.error, fields);
}

function unsupported(w: Walk, v: unknown, problem: string): string {
  if (w.lenient) return `[unserializable: ${describeValue(v)}]`;
  const where = formatPath(rootOf(w), w.path);
  const issuePath = w.path.map((s) => (typeof s === "object" ? s.key : s));
  const message = `${w.what} cannot be stored: ${where} ${problem}. ${PLAIN_DATA}.`;
  const issue: ValidationIssue = { path: issuePath, message: `${problem}` };
  throw new ValidationError(message, [issue]);
}

function describeValue(v: unknown): string {
  if (typeof v === "function") return `function ${v.name || "(anonymous)"}`;
  if (typeof v === "symbol") return v.toString();
  const name = (Object.getPrototypeOf(v) as { constructor?: { name?: unknown } } | null)?.constructor?.name;
  return typeof name === "string" && name !== "" ? `${name} instance` : Object.prototype.toString.call(v);
}

function describeKey(key: unknown): string {
  if (typeof key === "string") return JSON.stringify(key);
  if (typeof key === "number" || typeof key === "boolean" || key === null || key === undefined)
    return String(key);
  if (typeof key === "bigint") return `${key}n`;
  return "<object key>";
}

const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;

function formatPath(root: string, path: readonly PathSegment[]): string {
  let out = root;
  for (const s of path) {
    if (typeof s === "number") out += `[${s}]`;
    else if (typeof s === "string") out += IDENTIFIER.test(s) ? `.${s}` : `[${JSON.stringify(s)}]`;
    else out += s.label;
  }
  return out;
}

const LEADING_WORD = /^[A-Za-z_$][\w$]*/;

/** The first word of `what`, which roots error paths; worked out only when an error needs it. */
function rootOf(w: Walk): string {
  return LEADING_WORD.exec(w.what)?.[0] ?? "value";
}

/**
 * Readies `value` for the Encoder: the same value where it is plain data, else a copy along the
 * paths to what was swapped for a marker or box.
 *
 * @param what - names the payload in error messages; its first word roots the path.
 * @throws {@link ValidationError} naming the path of anything that cannot be stored.
 */
export function prepareValue(value: unknown, what: string): unknown {
  return prepare(value, { what, ancestors: [], path: [], lenient: false }, 0);
}
