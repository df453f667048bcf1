/**
 * The signal-wait step and signal delivery. `sig.wait()` takes the oldest buffered signal of its
 * name, or parks the fiber (with a timeout timer when asked). A SignalReceived resumes the oldest
 * waiter of its name or joins the buffer. At delivery, a signal the workflow does not accept is
 * turned into SignalRejected (see checkSignal) and never reaches the code.
 */
import type { SignalWaitStep } from "../../definitions/signal.ts";
import { toMs } from "../../duration.ts";
import type { DistributiveOmit, EventOf, NewEvent } from "../../history/events.ts";
import type { Fiber, Pending } from "../fiber.ts";
import type { StepOps, StepStart } from "../step-ops.ts";

/** A signal refused at delivery, recorded in its place. */
export type RejectedSignal = DistributiveOmit<EventOf<"SignalRejected">, "seq">;

export function startSignalWait(fiber: Fiber, s: SignalWaitStep<unknown>, ops: StepOps): StepStart {
  const st = ops.s;
  if (s.schema && !st.signalSchemas.has(s.signalName)) st.signalSchemas.set(s.signalName, s.schema);
  const schema = st.signalSchemas.get(s.signalName);
  const buffered = st.signalBuffer.get(s.signalName);
  while (buffered && buffered.length > 0) {
    const item = buffered.shift() as { payload: unknown };
    // Buffered before any wait() told the engine its schema: checked now, as it is consumed.
    if (!schema || schema.safeParse(item.payload).success) return { ok: true, value: item.payload };
    ops.warn(`signal skipped: a buffered payload of signal "${s.signalName}" does not match its schema`, {
      signal: s.signalName,
    });
  }
  let timerStep: number | null = null;
  if (s.timeout !== undefined) {
    const ms = toMs(s.timeout, "signal wait timeout");
    timerStep = st.nextStep();
    ops.rec.emit({ type: "TimerStarted", step: timerStep, dueAt: st.nowTs + ms, durationMs: ms });
    st.waitOn(timerStep, fiber);
  }
  fiber.pending = { kind: "signal", name: s.signalName, timerStep };
  const list = st.signalWaiters.get(s.signalName);
  if (list) list.push(fiber);
  else st.signalWaiters.set(s.signalName, [fiber]);
  return null;
}

export function withdrawSignalWait(f: Fiber, p: Extract<Pending, { kind: "signal" }>, ops: StepOps): void {
  removeWaiter(f, p.name, ops);
  if (p.timerStep !== null) {
    ops.s.waitingSteps.delete(p.timerStep);
    ops.rec.emit({ type: "TimerCancelled", step: p.timerStep });
  }
}

/** The wait's timeout timer fired: the wait returns `undefined`. */
export function signalWaitExpired(f: Fiber, timerStep: number, ops: StepOps): void {
  if (f.pending?.kind !== "signal") return;
  removeWaiter(f, f.pending.name, ops);
  ops.s.waitingSteps.delete(timerStep);
  f.pending = null;
  ops.resume(f, { ok: true, value: undefined });
}

export function signalReceived(e: EventOf<"SignalReceived">, ops: StepOps): void {
  const st = ops.s;
  const f = st.signalWaiters.get(e.name)?.shift();
  if (f?.pending?.kind !== "signal") {
    const item = { payload: e.payload, order: st.signalOrder++ };
    const buf = st.signalBuffer.get(e.name);
    if (buf) buf.push(item);
    else st.signalBuffer.set(e.name, [item]);
    return;
  }
  const timerStep = f.pending.timerStep;
  f.pending = null;
  if (timerStep !== null) {
    st.waitingSteps.delete(timerStep);
    ops.rec.emit({ type: "TimerCancelled", step: timerStep });
  }
  ops.resume(f, { ok: true, value: e.payload });
}

/**
 * Checks a signal at delivery against what the workflow accepts: a name it declares (when it
 * declares `signals`) and a payload its schema accepts (the declared schema, else that of a
 * `wait()` already made on the name). A refused signal is recorded as `SignalRejected` with the
 * reason, so the sender and operators see it in history, and the code never sees it.
 */
export function checkSignal(
  e: EventOf<"SignalReceived"> | NewEvent,
  ops: StepOps,
): NewEvent | RejectedSignal {
  if (e.type !== "SignalReceived") return e;
  const def = ops.s.definition;
  const declared = def.signals;
  let reason: string | undefined;
  if (declared && !declared.some((d) => d.name === e.name)) {
    reason = `workflow "${def.name}" does not declare signal "${e.name}"; it declares: ${declared.map((d) => `"${d.name}"`).join(", ") || "none"}`;
  } else {
    const parsed = ops.s.signalSchemas.get(e.name)?.safeParse(e.payload);
    if (parsed && !parsed.success) {
      const issue = parsed.error.issues[0];
      const where = issue?.path.length ? issue.path.join(".") : "(the payload)";
      reason = `payload of signal "${e.name}" does not match its schema: ${where}: ${issue?.message ?? "invalid"}`;
    }
  }
  if (reason === undefined) return e;
  ops.warn(`signal rejected: ${reason}`, { signal: e.name });
  return { type: "SignalRejected", ts: e.ts, name: e.name, payload: e.payload, reason };
}

/** Signals received and not yet consumed, in arrival order (handed on by continue-as-new). */
export function unconsumedSignals(ops: StepOps): { name: string; payload: unknown }[] {
  return [...ops.s.signalBuffer.entries()]
    .flatMap(([name, items]) => items.map((i) => ({ name, payload: i.payload, order: i.order })))
    .sort((a, b) => a.order - b.order)
    .map(({ name, payload }) => ({ name, payload }));
}

function removeWaiter(f: Fiber, name: string, ops: StepOps): void {
  const list = ops.s.signalWaiters.get(name);
  if (!list) return;
  const i = list.indexOf(f);
  if (i >= 0) list.splice(i, 1);
}
