/**
 * WorkflowHandle: one workflow id as a client sees it — wait for its result, signal it, query it,
 * cancel it, describe it, read its history. Typed by the workflow definition it was made from.
 */
import {
  type Backend,
  type BackendNotification,
  CancelledError,
  ConflictError,
  type DataConverter,
  decodeHistory,
  decodeInboxEvent,
  deserializeError,
  encodeBody,
  HistoryCorruptError,
  type HistoryEvent,
  InvalidOptionsError,
  isClosedStatus,
  type NewInboundEvent,
  type PendingActivity,
  parseWith,
  type QueryDefinition,
  type RawEvent,
  RunNotFoundError,
  type RunRecord,
  type RunStatus,
  type Schema,
  type SerializedError,
  type SignalDefinition,
  SpoolError,
  serializeError,
  TimeoutError,
  type WorkflowDefinition,
  WorkflowExecutor,
  WorkflowFailedError,
  type WorkflowOutput,
} from "@spool/core";
import type { z } from "zod";
import { checkedResult } from "./result-check.ts";

/** What describe() tells about a run. */
export interface RunDescription {
  workflowId: string;
  runId: string;
  workflowName: string;
  status: RunStatus;
  version: string | null;
  createdAt: Date;
  updatedAt: Date;
  closedAt: Date | null;
  historyLength: number;
  parent: { workflowId: string; runId: string } | null;
  continuedFromRunId: string | null;
  continuedToRunId: string | null;
  /** The error of a failed, cancelled or blocked run. */
  error: Error | null;
  /** For blocked runs: why. */
  blockedReason: string | null;
  /**
   * The run's unfinished activity steps (open runs only): attempts so far, the last attempt's
   * error, and when the next attempt runs. A step retried again and again shows here while the run
   * still looks `running`.
   */
  pendingActivities: PendingActivityDescription[];
}

/** An unfinished activity step, as {@link RunDescription} shows it. */
export interface PendingActivityDescription {
  step: number;
  activityName: string;
  /** Attempts made so far (0: not claimed yet), the running one included. */
  attempt: number;
  /** `running` (an attempt holds a lease), `backoff` (waiting to retry) or `waiting` (claimable, unclaimed). */
  state: PendingActivity["state"];
  /** The last failed attempt's error (name and message), or null. */
  lastError: { name: string; message: string } | null;
  /** `backoff`: when the next attempt starts; `waiting`: since when it could have; null while running. */
  nextAttemptAt: Date | null;
  scheduledAt: Date;
}

/**
 * A consistent view of a run for a query: its record (history up to `run.lastSeq`) and the inbound
 * events waiting in its inbox at that same point, decoded.
 */
export interface QuerySnapshot {
  run: RunRecord;
  inbox: readonly NewInboundEvent[];
}

/** Something that can answer queries from live workflow state (an in-process Worker). */
export interface QueryResponder {
  /**
   * An executor holding the run's state at `at`: its history up to `at.run.lastSeq` with the
   * inbox events applied (on a throwaway executor, never the worker's cached one). Without `at`,
   * the run's state as stored now. Undefined when this responder does not have the workflow's code.
   */
  executorFor(runId: string, at?: QuerySnapshot): Promise<WorkflowExecutor | undefined>;
}

/** Internal wiring shared by a Client and its handles. */
export interface HandleDeps {
  backend: Backend;
  dc: DataConverter;
  queryResponders: () => QueryResponder[];
  workflows: ReadonlyMap<string, WorkflowDefinition>;
}

/**
 * A handle on a workflow id. `runId` is the run it was created for; `result()` follows
 * continue-as-new to the last run of the chain.
 */
export class WorkflowHandle<W extends WorkflowDefinition = WorkflowDefinition> {
  constructor(
    readonly workflowId: string,
    readonly runId: string | undefined,
    private readonly deps: HandleDeps,
  ) {}

  /**
   * Waits for the run (following continue-as-new) to finish and returns its typed result.
   * @throws WorkflowFailedError with the workflow's error as `cause` if it failed or was cancelled;
   * TimeoutError if `timeout` (ms) passes first; RunNotFoundError for an unknown id.
   */
  async result(options: { timeout?: number; pollIntervalMs?: number } = {}): Promise<WorkflowOutput<W>> {
    const deadline = options.timeout === undefined ? Number.POSITIVE_INFINITY : Date.now() + options.timeout;
    let runId = this.runId;
    let delay = options.pollIntervalMs ?? 10;
    let failures = 0;
    for (;;) {
      let run: RunRecord;
      try {
        run = await this.currentRun(runId);
        failures = 0;
      } catch (err) {
        // A lost connection or a restarting database is transient: keep waiting, within reason.
        // A damaged row stays damaged: waiting would only delay the error.
        if (
          RunNotFoundError.is(err) ||
          HistoryCorruptError.is(err) ||
          ++failures > 10 ||
          Date.now() >= deadline
        )
          throw err;
        await new Promise((r) => setTimeout(r, Math.min(100 * 2 ** failures, 5000)));
        continue;
      }
      if (run.status === "continued" && run.continuedToRunId) {
        runId = run.continuedToRunId;
        continue;
      }
      if (isClosedStatus(run.status)) return this.outcome(run);
      const remaining = deadline - Date.now();
      if (remaining <= 0) {
        throw new TimeoutError(
          `workflow "${this.workflowId}" did not finish within ${options.timeout} ms (status ${run.status})`,
          options.timeout ?? 0,
        );
      }
      await this.waitForChange(run.runId, Math.min(delay, remaining));
      delay = Math.min(delay * 2, 500);
    }
  }

  private async outcome(run: RunRecord): Promise<WorkflowOutput<W>> {
    if (run.status === "completed") {
      return (await checkedResult(run, this.deps.backend, this.deps.dc)) as WorkflowOutput<W>;
    }
    const cause = run.error
      ? deserializeError((await this.deps.dc.decode(run.error)) as SerializedError)
      : new CancelledError(run.status);
    throw new WorkflowFailedError(
      { workflowId: run.workflowId, runId: run.runId, status: run.status },
      { cause },
    );
  }

  /** Waits until the run may have changed: a run-closed notification in this process, or `ms`. */
  private waitForChange(runId: string, ms: number): Promise<void> {
    return new Promise((resolve) => {
      let unsub: () => void = () => undefined;
      const t = setTimeout(() => {
        unsub();
        resolve();
      }, ms);
      unsub = this.deps.backend.subscribe((n: BackendNotification) => {
        if (n.kind === "run-closed" && n.runId === runId) {
          clearTimeout(t);
          unsub();
          resolve();
        }
      });
    });
  }

  private async currentRun(runId: string | undefined): Promise<RunRecord> {
    const run = runId
      ? await this.deps.backend.inspect.getRun(runId)
      : await this.deps.backend.inspect.getLatestRun(this.workflowId);
    if (!run) throw new RunNotFoundError(this.workflowId, runId);
    return run;
  }

  /**
   * Sends a signal to the open run. The payload is checked against the signal's schema first.
   *
   * Give `requestId` to make the call safe to repeat: a run delivers each request id once, so a
   * retry after a lost acknowledgement (a dropped connection, a timeout, a crash of the caller)
   * cannot deliver the signal twice.
   *
   * @example
   * ```ts
   * await handle.signal(approve, { by: "ana" }, { requestId: `approval-${ticketId}` });
   * ```
   * @throws ValidationError (nothing recorded) for a bad payload or a signal the workflow does not
   * declare; InvalidOptionsError for a request id that is not a string of 1–200 characters;
   * RunNotFoundError if there is no open run.
   */
  async signal<S extends Schema>(
    signal: SignalDefinition<S>,
    payload: z.input<S>,
    options: { requestId?: string } = {},
  ): Promise<void> {
    checkRequestId(options.requestId);
    const parsed = parseWith(signal.schema, payload, `payload of signal "${signal.name}"`);
    await this.checkSignalDeclared(signal.name, parsed);
    const body = await encodeBody(
      { type: "SignalReceived", name: signal.name, payload: parsed },
      this.deps.dc,
      `payload of signal "${signal.name}"`,
    );
    await this.deps.backend.signalWorkflow({
      workflowId: this.workflowId,
      body,
      ...(options.requestId !== undefined ? { requestId: options.requestId } : {}),
    });
  }

  /**
   * With the run's workflow code at hand, checks what the worker would check at delivery: that the
   * workflow declares the signal (when it declares any) and that the declared schema accepts the
   * payload (the sender's definition of the same name may be looser).
   */
  private async checkSignalDeclared(name: string, payload: unknown): Promise<void> {
    const run = await this.deps.backend.inspect.getLatestRun(this.workflowId);
    if (!run) return; // the backend reports RunNotFoundError
    const def = this.deps.workflows.get(run.workflowName);
    if (!def?.signals) return;
    const declared = def.signals.find((s) => s.name === name);
    if (!declared) {
      throw new InvalidOptionsError(
        `workflow "${run.workflowName}" does not accept signal "${name}"; it declares: ${def.signals.map((s) => s.name).join(", ") || "none"}`,
      );
    }
    parseWith(
      declared.schema,
      payload,
      `payload of signal "${name}" (as workflow "${run.workflowName}" declares it)`,
    );
  }

  /**
   * Answers a query from the run's current state without writing history: from a worker in this
   * process that has the run cached, or by replaying its history with the workflow's code.
   * @throws InvalidOptionsError when no code for the run's workflow is registered in this process.
   */
  async query<T>(query: QueryDefinition<T>): Promise<T> {
    const run = await this.currentRun(this.runId);
    let latest = run;
    while (latest.status === "continued" && latest.continuedToRunId)
      latest = await this.currentRun(latest.continuedToRunId);
    const at = await this.snapshot(latest.runId);
    for (const r of this.deps.queryResponders()) {
      const ex = await r.executorFor(at.run.runId, at);
      if (ex) return this.answer(ex, query);
    }
    const def = this.deps.workflows.get(at.run.workflowName);
    if (!def) {
      throw new InvalidOptionsError(
        `cannot query run ${at.run.runId}: the code of workflow "${at.run.workflowName}" is not registered in this ` +
          "process. Pass it to new Client({ workflows: [...] }) or run a Worker with it in this process.",
      );
    }
    const raws = await this.deps.backend.inspect.getHistory(at.run.runId);
    const ex = new WorkflowExecutor(def, { workflowId: at.run.workflowId, runId: at.run.runId });
    await ex.replayHistory(await decodeHistory(raws.slice(0, at.run.lastSeq), this.deps.dc, at.run.runId));
    if (at.inbox.length > 0) await ex.apply(at.inbox, this.deps.backend.now());
    return this.answer(ex, query);
  }

  /**
   * Read-your-writes for queries: the run's record and its inbox as of one point, so a signal
   * acknowledged before the query started is seen whether it still waits in the inbox or has been
   * recorded. The inbox is read between two reads of the run; an activation that consumed inbox
   * events in between moves `lastSeq`, and the snapshot is taken again.
   */
  private async snapshot(runId: string): Promise<QuerySnapshot> {
    for (;;) {
      const run = await this.currentRun(runId);
      const raws = await this.deps.backend.getInbox(runId);
      const again = await this.currentRun(runId);
      if (again.lastSeq !== run.lastSeq) continue;
      const inbox: NewInboundEvent[] = [];
      for (const raw of raws)
        inbox.push((await decodeInboxEvent(raw, this.deps.dc, runId)) as NewInboundEvent);
      return { run: again, inbox };
    }
  }

  private answer<T>(ex: WorkflowExecutor, query: QueryDefinition<T>): T {
    const value = ex.query(query);
    return query.schema ? (parseWith(query.schema, value, `answer of query "${query.name}"`) as T) : value;
  }

  /**
   * Requests cancellation: the workflow sees CancelledError at its current `yield*` and may run
   * clean-up steps. Cancelling a finished run is a no-op that says so (`alreadyClosed`).
   */
  async cancel(
    reason = "cancelled by client",
  ): Promise<{ outcome: "requested" | "alreadyClosed"; status: RunStatus }> {
    const body = await encodeBody({ type: "CancelRequested", reason }, this.deps.dc);
    const r = await this.deps.backend.requestCancel({ workflowId: this.workflowId, body });
    return { outcome: r.outcome, status: r.status };
  }

  /**
   * Ends the open run at once, without running any workflow code (no compensations, no `finally`
   * blocks): the way out for a run that is `blocked` (its code cannot replay, or a history row is
   * corrupt) or must stop immediately. The run ends `cancelled` with a CancelledError "terminated:
   * <reason>"; its pending activities and timers are withdrawn, its open children are sent a
   * cancellation, and a parent hears of it as a child failure. Inbound events waiting in its inbox
   * are recorded before the end, so nothing acknowledged is lost. Prefer `cancel()` for a run that
   * can still run its clean-up.
   * @throws RunNotFoundError when there is no open run.
   */
  async terminate(reason = "terminated by client"): Promise<{ runId: string }> {
    const { backend, dc } = this.deps;
    for (let attempt = 0; ; attempt++) {
      const run = await this.currentRun(this.runId);
      if (isClosedStatus(run.status)) throw new RunNotFoundError(this.workflowId, run.runId, "open run");
      const inbox = await backend.getInbox(run.runId).catch(() => []);
      const error = serializeError(new CancelledError(`terminated: ${reason}`));
      const ts = backend.now();
      const events: RawEvent[] = inbox.map((e, i) => ({
        seq: run.lastSeq + 1 + i,
        ts: e.ts,
        type: e.type,
        step: e.step,
        body: e.body,
      }));
      events.push({
        seq: run.lastSeq + events.length + 1,
        ts,
        type: "WorkflowCancelled",
        step: null,
        body: await encodeBody({ type: "WorkflowCancelled", error }, dc),
      });
      const children = await backend.inspect.listRuns({
        parentRunId: run.runId,
        status: ["running", "blocked"],
      });
      const cancelBody = await encodeBody(
        { type: "CancelRequested", reason: `parent ${run.workflowId} was terminated` },
        dc,
      );
      try {
        await backend.commitActivation({
          runId: run.runId,
          expectedLastSeq: run.lastSeq,
          events,
          consumedInbox: inbox.map((e) => e.id),
          activities: [],
          cancelActivities: [],
          timers: [],
          cancelTimers: [],
          children: [],
          cancelChildren: children.runs.map((c) => ({
            step: c.parentStep ?? 0,
            workflowId: c.workflowId,
            body: cancelBody,
          })),
          close: {
            status: "cancelled",
            error: (await dc.encodeError(error, (e) => e, "termination reason")).bytes,
            ...(run.parentRunId
              ? {
                  parentEvent: {
                    type: "ChildFailed" as const,
                    body: await encodeBody({ type: "ChildFailed", error }, dc),
                  },
                }
              : {}),
          },
        });
        return { runId: run.runId };
      } catch (err) {
        // A worker advanced the run meanwhile (or a signal arrived): read again and retry.
        if (!ConflictError.is(err) || attempt >= 5) throw err;
      }
    }
  }

  /** Status, ids, version and error of the run (the latest run with this id if none was given). */
  async describe(): Promise<RunDescription> {
    const run = await this.currentRun(this.runId);
    const pending = isClosedStatus(run.status)
      ? []
      : await this.deps.backend.inspect.pendingActivities([run.runId]);
    return describeRun(run, this.deps.dc, pending);
  }

  /** The run's history, decoded. */
  async history(): Promise<HistoryEvent[]> {
    const run = await this.currentRun(this.runId);
    const raws = await this.deps.backend.inspect.getHistory(run.runId);
    return decodeHistory(raws, this.deps.dc, run.runId);
  }
}

/** Turns a stored run (and its pending activities, from `inspect.pendingActivities`) into a description. */
export async function describeRun(
  run: RunRecord,
  dc: DataConverter,
  pending: readonly PendingActivity[] = [],
): Promise<RunDescription> {
  let error: Error | null = null;
  if (run.error) {
    try {
      error = deserializeError((await dc.decode(run.error)) as SerializedError);
    } catch (err) {
      error = new SpoolError(`the run's error could not be decoded: ${String(err)}`);
    }
  }
  return {
    workflowId: run.workflowId,
    runId: run.runId,
    workflowName: run.workflowName,
    status: run.status,
    version: run.version,
    createdAt: new Date(run.createdAt),
    updatedAt: new Date(run.updatedAt),
    closedAt: run.closedAt === null ? null : new Date(run.closedAt),
    historyLength: run.lastSeq,
    parent:
      run.parentRunId && run.parentWorkflowId
        ? { workflowId: run.parentWorkflowId, runId: run.parentRunId }
        : null,
    continuedFromRunId: run.continuedFromRunId,
    continuedToRunId: run.continuedToRunId,
    error,
    blockedReason: run.blockedReason,
    pendingActivities: await Promise.all(
      pending.filter((p) => p.runId === run.runId).map((p) => describePending(p, dc)),
    ),
  };
}

async function describePending(p: PendingActivity, dc: DataConverter): Promise<PendingActivityDescription> {
  let lastError: PendingActivityDescription["lastError"] = null;
  if (p.lastError !== null) {
    try {
      const e = (await dc.decode(p.lastError)) as SerializedError;
      lastError = { name: String(e?.name ?? "Error"), message: String(e?.message ?? "") };
    } catch (err) {
      lastError = {
        name: "UndecodableError",
        message: `the stored error could not be decoded: ${String(err)}`,
      };
    }
  }
  return {
    step: p.step,
    activityName: p.name,
    attempt: p.attempt,
    state: p.state,
    lastError,
    nextAttemptAt: p.nextAttemptAt === null ? null : new Date(p.nextAttemptAt),
    scheduledAt: new Date(p.scheduledAt),
  };
}

/**
 * Checks a signal's de-duplication key.
 * @throws InvalidOptionsError unless it is undefined or a string of 1–200 characters.
 */
export function checkRequestId(requestId: unknown): void {
  if (requestId === undefined) return;
  if (typeof requestId !== "string" || requestId.length === 0 || requestId.length > 200) {
    throw new InvalidOptionsError(
      `a signal request id must be a string of 1 to 200 characters, got ${typeof requestId === "string" ? `${requestId.length} characters` : typeof requestId}. Use a key that names this one request, e.g. "approval-<ticket id>".`,
    );
  }
}
