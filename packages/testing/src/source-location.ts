/**
 * Source locations of workflow code: parses V8 stack traces and picks the first frame that belongs
 * to the user's code (not Spool's packages, not Node internals, not node_modules), so reports can
 * say "Date.now() at src/order.ts:23:19" instead of dumping a stack.
 */
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** One parsed stack frame. */
export interface StackFrame {
  /** The function name as V8 printed it (`WorkflowExecutor.drive`, `Object.fn`...), or "". */
  fn: string;
  /** Absolute file path (file URLs are converted), or a pseudo location such as `node:internal/...`. */
  file: string;
  line: number;
  column: number;
}

/** Where a trap or a step was hit, as seen from the workflow code. */
export interface CodeSite {
  /** The first user frame, e.g. `test/order.test.ts:23:19` (relative to the working directory). */
  site: string | undefined;
  /** A library frame (node_modules) between the trap and the user frame, if any. */
  via: string | undefined;
  /** The first Spool core frame below the user code, e.g. `WorkflowExecutor.sideEffect`. */
  engineFrame: string | undefined;
  /** True when no user frame was found before Spool's engine or runtime: the call came from Spool itself. */
  fromEngine: boolean;
}

function packageRoot(specifier: string): string | undefined {
  try {
    const entry = createRequire(import.meta.url).resolve(specifier);
    // <root>/src/index.ts or <root>/dist/index.js
    return path.dirname(path.dirname(entry));
  } catch {
    return undefined;
  }
}

const testingRoot = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const coreRoot = packageRoot("@spool/core");
/** Spool's runtime (worker, client, backend): its own calls are never workflow code. */
const runtimeRoots = ["@spool/worker", "@spool/client", "@spool/sqlite"].map(packageRoot);

const FRAME = /^\s*at (?:async )?(?:(.*?) \()?((?:file:\/\/)?[^()]+?):(\d+):(\d+)\)?\s*$/;

/** Parses the frames of a V8 stack trace (the message lines are skipped). */
export function parseStack(stack: string | undefined): StackFrame[] {
  if (!stack) return [];
  const out: StackFrame[] = [];
  for (const line of stack.split("\n")) {
    const m = FRAME.exec(line);
    if (!m) continue;
    let file = m[2] as string;
    if (file.startsWith("file://")) {
      try {
        file = fileURLToPath(file);
      } catch {
        // keep it as printed
      }
    }
    out.push({ fn: m[1] ?? "", file, line: Number(m[3]), column: Number(m[4]) });
  }
  return out;
}

function under(file: string, root: string | undefined): boolean {
  if (!root) return false;
  return (
    file.startsWith(`${root}${path.sep}src${path.sep}`) ||
    file.startsWith(`${root}${path.sep}dist${path.sep}`)
  );
}

/** True for frames of Spool's pure engine (@spool/core). */
export function isEngineFrame(f: StackFrame): boolean {
  return under(f.file, coreRoot) || /[\\/]@spool[\\/]core[\\/]/.test(f.file);
}

function isRuntimeFrame(f: StackFrame): boolean {
  return (
    runtimeRoots.some((r) => under(f.file, r)) ||
    /[\\/]@spool[\\/](worker|client|sqlite|postgres)[\\/]/.test(f.file)
  );
}

function isTestingFrame(f: StackFrame): boolean {
  return under(f.file, testingRoot) || /[\\/]@spool[\\/]testing[\\/]/.test(f.file);
}

function isInternal(f: StackFrame): boolean {
  return (
    f.file.startsWith("node:") || f.file === "<anonymous>" || f.file === "native" || !path.isAbsolute(f.file)
  );
}

function isLibrary(f: StackFrame): boolean {
  return /[\\/]node_modules[\\/]/.test(f.file);
}

/** Formats a frame as `relative/path.ts:line:column`. */
export function formatFrame(f: StackFrame): string {
  const rel = path.relative(process.cwd(), f.file);
  const shown = rel && !rel.startsWith("..") ? rel : f.file;
  return `${shown}:${f.line}:${f.column}`;
}

/**
 * Finds the user code in a stack captured inside a trap or a step: skips this package's own
 * frames, Node internals and libraries, and stops at the engine.
 */
export function locateUserCode(stack: string | undefined): CodeSite {
  let via: string | undefined;
  for (const f of parseStack(stack)) {
    if (isTestingFrame(f) || isInternal(f)) continue;
    if (isEngineFrame(f) || isRuntimeFrame(f))
      return { site: undefined, via, engineFrame: f.fn, fromEngine: true };
    if (isLibrary(f)) {
      via ??= formatFrame(f);
      continue;
    }
    return { site: formatFrame(f), via, engineFrame: engineFrameBelow(stack), fromEngine: false };
  }
  return { site: undefined, via, engineFrame: undefined, fromEngine: false };
}

function engineFrameBelow(stack: string | undefined): string | undefined {
  for (const f of parseStack(stack)) if (isEngineFrame(f)) return f.fn;
  return undefined;
}

/** Captures the current stack with enough depth to reach below the workflow code. */
export function captureStack(): string | undefined {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 40;
  try {
    return new Error("trap").stack;
  } finally {
    Error.stackTraceLimit = limit;
  }
}
