/**
 * The Client: starts workflows and hands out WorkflowHandles. It validates inputs before anything
 * is written, and starts are idempotent by workflow id.
 */
import {
  type Backend,
  DataConverter,
  encodeBody,
  type IdConflictPolicy,
  InvalidOptionsError,
  isClosedStatus,
  newId,
  type PayloadCodec,
  parseWith,
  type RunFilter,
  type Schema,
  type SignalDefinition,
  type StartWorkflowRequest,
  WorkflowAlreadyStartedError,
  type WorkflowDefinition,
  type WorkflowInput,
  workflowInputFingerprint,
  workflowStartedFields,
} from "@spool/core";
import type { z } from "zod";
import {
  checkRequestId,
  describeRun,
  type QueryResponder,
  type RunDescription,
  WorkflowHandle,
} from "./workflow-handle.ts";

/** Options of a Client. */
export interface ClientOptions {
  backend: Backend;
  /** Must match the workers' codec. */
  codec?: PayloadCodec;
  maxPayloadBytes?: number;
  /**
   * Workflow code known to this process: used to answer queries by replay and to reject signals a
   * workflow does not declare.
   */
  // biome-ignore lint/suspicious/noExplicitAny: definitions of any schema types are accepted
  workflows?: readonly WorkflowDefinition<any, any>[];
  /** In-process workers whose cached runs can answer queries without a replay. */
  queryResponders?: readonly QueryResponder[];
}

/** Options of `client.start`. */
export interface StartOptions {
  /** The workflow id: the idempotency key of the start (default: a new ULID). */
  id?: string;
  /**
   * What to do when the id already has a run. "attach" (default): return it if it was started with
   * the same input, else throw WorkflowAlreadyStartedError; "useExisting": return it whatever its
   * input; "fail": always throw; "startNewIfClosed": attach to an open run (same input), start a
   * new run when the latest is closed. Runs from before schema version 3 have no stored input
   * fingerprint and are attached as if their input matched.
   */
  onConflict?: IdConflictPolicy;
}

/** Pending activity steps `list()` reports per run (those with the most attempts); `describe()` reports all. */
const PENDING_PER_RUN_IN_LIST = 5;

/**
 * Starts workflows and gets handles on them.
 *
 * @example
 * ```ts
 * const client = new Client({ backend });
 * const handle = await client.start(order, { id: "o-1", total: 42 }, { id: "order-o-1" });
 * console.log(await handle.result());
 * ```
 */
export class Client {
  private readonly backend: Backend;
  private readonly dc: DataConverter;
  private readonly workflows = new Map<string, WorkflowDefinition>();
  private readonly responders: QueryResponder[];
  private initialized: Promise<void> | null = null;

  constructor(options: ClientOptions) {
    if (!options?.backend) throw new InvalidOptionsError("new Client() needs { backend }");
    this.backend = options.backend;
    this.dc = new DataConverter({ codec: options.codec, maxPayloadBytes: options.maxPayloadBytes });
    for (const w of options.workflows ?? []) this.workflows.set(w.name, w);
    this.responders = [...(options.queryResponders ?? [])];
  }

  private init(): Promise<void> {
    this.initialized ??= this.backend.init();
    return this.initialized;
  }

  /**
   * Starts a run of `workflow` with `input`, or attaches to the existing run with the same id.
   * @throws ValidationError (nothing written) when the input fails the workflow's schema;
   * WorkflowAlreadyStartedError with onConflict "fail", or when the id belongs to another workflow.
   */
  async start<W extends WorkflowDefinition>(
    workflow: W,
    input: WorkflowInput<W>,
    options: StartOptions = {},
  ): Promise<WorkflowHandle<W>> {
    await this.init();
    const req = await this.startRequest(workflow, input, options);
    const r = await this.backend.startWorkflow(req);
    this.checkSameWorkflow(req, r);
    return new WorkflowHandle<W>(req.workflowId, r.runId, this.handleDeps(workflow));
  }

  /**
   * Signals the open run with this id, starting it first if none is open — in one transaction,
   * so the signal is never lost and the workflow never started twice.
   */
  async signalWithStart<W extends WorkflowDefinition, S extends Schema>(
    workflow: W,
    input: WorkflowInput<W>,
    options: Omit<StartOptions, "onConflict"> & {
      /**
       * With an open run of this id: signal it only if its input matches (default
       * "startNewIfClosed", which throws WorkflowAlreadyStartedError otherwise), or whatever its
       * input ("useExisting"). A closed run never blocks the start.
       */
      onConflict?: "startNewIfClosed" | "useExisting";
      id: string;
      signal: SignalDefinition<S>;
      payload: z.input<S>;
      /** Makes the call safe to repeat: the run delivers a signal with this id once (see `handle.signal`). */
      signalRequestId?: string;
    },
  ): Promise<WorkflowHandle<W>> {
    checkRequestId(options.signalRequestId);
    await this.init();
    // A closed run never blocks it; an open run is signalled if its input matches, or whatever
    // its input with onConflict "useExisting" (the backend reads that from the request).
    const req = await this.startRequest(workflow, input, {
      ...options,
      onConflict: options.onConflict === "useExisting" ? "useExisting" : "startNewIfClosed",
    });
    const sig = options.signal;
    const payload = parseWith(sig.schema, options.payload, `payload of signal "${sig.name}"`);
    if (workflow.signals && !workflow.signals.some((s) => s.name === sig.name)) {
      throw new InvalidOptionsError(`workflow "${workflow.name}" does not accept signal "${sig.name}"`);
    }
    const body = await encodeBody(
      { type: "SignalReceived", name: sig.name, payload },
      this.dc,
      `payload of signal "${sig.name}"`,
    );
    const r = await this.backend.signalWithStart(
      req,
      body,
      options.signalRequestId !== undefined ? { requestId: options.signalRequestId } : {},
    );
    this.checkSameWorkflow(req, r);
    return new WorkflowHandle<W>(req.workflowId, r.runId, this.handleDeps(workflow));
  }

  /** A handle on an existing workflow id (its latest run, or `runId`). */
  getHandle<W extends WorkflowDefinition = WorkflowDefinition>(
    workflowId: string,
    runId?: string,
  ): WorkflowHandle<W> {
    return new WorkflowHandle<W>(workflowId, runId, this.handleDeps(undefined));
  }

  /** Lists runs, newest first, with filters and paging. */
  async list(
    filter: RunFilter = {},
    page: { limit?: number; cursor?: string | null } = {},
  ): Promise<{ runs: RunDescription[]; nextCursor: string | null }> {
    await this.init();
    const p = await this.backend.inspect.listRuns(filter, page);
    const open = p.runs.filter((r) => !isClosedStatus(r.status)).map((r) => r.runId);
    // A summary per run (a fan-out of thousands of steps would swamp a listing): the steps with
    // the most attempts, which are the ones that tell why a run is stuck.
    const pending = await this.backend.inspect.pendingActivities(open, { perRun: PENDING_PER_RUN_IN_LIST });
    return {
      runs: await Promise.all(p.runs.map((r) => describeRun(r, this.dc, pending))),
      nextCursor: p.nextCursor,
    };
  }

  /** Adds an in-process worker (or other responder) that can answer queries from its cache. */
  addQueryResponder(r: QueryResponder): void {
    this.responders.push(r);
  }

  private async startRequest(
    workflow: WorkflowDefinition,
    input: unknown,
    options: StartOptions,
  ): Promise<StartWorkflowRequest> {
    if (workflow?.kind !== "workflow") {
      throw new InvalidOptionsError("client.start() takes a workflow definition made by defineWorkflow()");
    }
    const parsed = parseWith(workflow.inputSchema, input, `input of workflow "${workflow.name}"`);
    const workflowId = options.id ?? newId();
    if (typeof workflowId !== "string" || workflowId.length === 0 || workflowId.length > 500) {
      throw new InvalidOptionsError("a workflow id must be a non-empty string of at most 500 characters");
    }
    const started = workflowStartedFields(workflow.name, workflow, parsed);
    return {
      workflowId,
      workflowName: workflow.name,
      version: workflow.version ?? null,
      startedEventBody: await encodeBody(started, this.dc, `input of workflow "${workflow.name}"`),
      onConflict: options.onConflict ?? "attach",
      inputHash: workflowInputFingerprint(parsed),
    };
  }

  private checkSameWorkflow(req: StartWorkflowRequest, r: { runId: string; workflowName: string }): void {
    if (r.workflowName !== req.workflowName) {
      throw new WorkflowAlreadyStartedError(
        req.workflowId,
        r.runId,
        `workflow id "${req.workflowId}" belongs to a run of "${r.workflowName}", not "${req.workflowName}"; ` +
          "use another id",
      );
    }
  }

  private handleDeps(workflow: WorkflowDefinition | undefined) {
    const workflows = new Map(this.workflows);
    if (workflow && !workflows.has(workflow.name)) workflows.set(workflow.name, workflow);
    return {
      backend: this.backend,
      dc: this.dc,
      queryResponders: () => this.responders,
      workflows,
    };
  }
}
