/**
 * History events: the append-only record of a run. One zod discriminated union is the single
 * source of truth for their shape; the TypeScript types are inferred from it.
 *
 * Events are either *inbound* (something happened outside the workflow code: an activity finished,
 * a timer fired, a signal arrived) or *outbound* (a command the workflow code produced: schedule an
 * activity, start a timer, complete). Replay feeds inbound events to the code in history order and
 * checks that the code produces the recorded outbound events between them.
 */
import { z } from "zod";

const serializedError = z.object({
  name: z.string(),
  message: z.string(),
  stack: z.string().optional(),
  cause: z.unknown().optional(),
  details: z.record(z.string(), z.unknown()).optional(),
});

const base = { seq: z.number().int().positive(), ts: z.number() };
const stepped = { ...base, step: z.number().int().positive() };

/** Activity options as recorded at schedule time (milliseconds; 0 = unlimited). */
export const activityOptionsSchema = z.object({
  retry: z.object({
    maxAttempts: z.number(),
    initialIntervalMs: z.number(),
    backoffCoefficient: z.number(),
    maxIntervalMs: z.number(),
    nonRetryableErrors: z.array(z.string()),
  }),
  timeoutMs: z.number(),
  heartbeatTimeoutMs: z.number(),
});

/** The union of all history events. */
export const historyEventSchema = z.discriminatedUnion("type", [
  z.object({
    ...base,
    type: z.literal("WorkflowStarted"),
    workflowName: z.string(),
    input: z.unknown(),
    version: z.string().optional(),
    parent: z.object({ workflowId: z.string(), runId: z.string(), step: z.number() }).optional(),
    continuedFrom: z.string().optional(),
    executionTimeoutMs: z.number().optional(),
  }),
  z.object({ ...base, type: z.literal("WorkflowCompleted"), result: z.unknown() }),
  z.object({ ...base, type: z.literal("WorkflowFailed"), error: serializedError }),
  z.object({ ...base, type: z.literal("WorkflowCancelled"), error: serializedError }),
  z.object({
    ...base,
    type: z.literal("WorkflowContinued"),
    input: z.unknown(),
    /** Signals received but not yet consumed, handed to the next run in arrival order. */
    carriedSignals: z.array(z.object({ name: z.string(), payload: z.unknown() })).optional(),
  }),
  z.object({
    ...stepped,
    type: z.literal("ActivityScheduled"),
    name: z.string(),
    input: z.unknown(),
    options: activityOptionsSchema,
  }),
  z.object({ ...stepped, type: z.literal("ActivityCompleted"), result: z.unknown(), attempt: z.number() }),
  z.object({
    ...stepped,
    type: z.literal("ActivityFailed"),
    error: serializedError,
    attempt: z.number(),
    reason: z.enum(["retries-exhausted", "non-retryable", "timeout", "cancelled", "validation"]),
  }),
  z.object({ ...stepped, type: z.literal("ActivityCancelled") }),
  z.object({ ...stepped, type: z.literal("TimerStarted"), dueAt: z.number(), durationMs: z.number() }),
  z.object({ ...stepped, type: z.literal("TimerFired") }),
  z.object({ ...stepped, type: z.literal("TimerCancelled") }),
  z.object({
    ...base,
    type: z.literal("SignalReceived"),
    name: z.string(),
    payload: z.unknown(),
    /** Delivered in the same turn as the inbound event just before it (no branch ran between them). */
    together: z.literal(true).optional(),
  }),
  z.object({
    ...base,
    type: z.literal("SignalRejected"),
    name: z.string(),
    payload: z.unknown(),
    /** Why the signal was not delivered: a name the workflow does not declare, or a payload its schema refuses. */
    reason: z.string(),
    /** Delivered in the same turn as the inbound event just before it (no branch ran between them). */
    together: z.literal(true).optional(),
  }),
  z.object({
    ...stepped,
    type: z.literal("ChildStarted"),
    name: z.string(),
    workflowId: z.string(),
    input: z.unknown(),
  }),
  z.object({ ...stepped, type: z.literal("ChildCompleted"), result: z.unknown() }),
  z.object({ ...stepped, type: z.literal("ChildFailed"), error: serializedError }),
  z.object({ ...stepped, type: z.literal("ChildStartFailed") }),
  z.object({ ...stepped, type: z.literal("ChildCancelled"), workflowId: z.string() }),
  z.object({ ...stepped, type: z.literal("SideEffect"), value: z.unknown() }),
  z.object({ ...base, type: z.literal("PatchMarker"), patchId: z.string() }),
  z.object({
    ...base,
    type: z.literal("CancelRequested"),
    reason: z.string(),
    /** Delivered in the same turn as the inbound event just before it (no branch ran between them). */
    together: z.literal(true).optional(),
  }),
]);

/** One history event. */
export type HistoryEvent = z.infer<typeof historyEventSchema>;
/** The `type` tag of a history event. */
export type EventType = HistoryEvent["type"];
/** The event of a given type. */
export type EventOf<T extends EventType> = Extract<HistoryEvent, { type: T }>;
/** `Omit` that distributes over a union. */
export type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
/** An event before it has a position in history. */
export type NewEvent = DistributiveOmit<HistoryEvent, "seq">;
/** A command as the engine produces it, before it has a position and a timestamp. */
export type EventDraft = DistributiveOmit<HistoryEvent, "seq" | "ts">;
/** Serialised activity options as recorded in `ActivityScheduled`. */
export type RecordedActivityOptions = z.infer<typeof activityOptionsSchema>;

/** Events that come from outside the workflow code and are fed to it during replay (the one list). */
export const INBOUND_TYPES = [
  "ActivityCompleted",
  "ActivityFailed",
  "TimerFired",
  "SignalReceived",
  "SignalRejected",
  "ChildCompleted",
  "ChildFailed",
  "ChildStartFailed",
  "CancelRequested",
] as const satisfies readonly EventType[];

/** The type of an inbound event. */
export type InboundEventType = (typeof INBOUND_TYPES)[number];

/** {@link INBOUND_TYPES} as a set. */
export const INBOUND_EVENT_TYPES: ReadonlySet<EventType> = new Set<EventType>(INBOUND_TYPES);

/** Events the workflow code produced (commands); replay checks that the code produces them again. */
export const OUTBOUND_EVENT_TYPES = new Set<EventType>([
  "ActivityScheduled",
  "ActivityCancelled",
  "TimerStarted",
  "TimerCancelled",
  "ChildStarted",
  "ChildCancelled",
  "SideEffect",
  "PatchMarker",
  "WorkflowCompleted",
  "WorkflowFailed",
  "WorkflowCancelled",
  "WorkflowContinued",
]);

/**
 * Inbound events addressed to the whole run rather than to one waiting step. An activation delivers
 * these first, all in one turn, before any step result: see `WorkflowExecutor.apply`.
 */
export const RUN_LEVEL_EVENT_TYPES = new Set<EventType>([
  "SignalReceived",
  "SignalRejected",
  "CancelRequested",
]);

/** True for inbound events (results fed to the code). */
export function isInbound(e: { type: EventType }): boolean {
  return INBOUND_EVENT_TYPES.has(e.type);
}

/** Events that end a run. */
export const CLOSING_EVENT_TYPES = new Set<EventType>([
  "WorkflowCompleted",
  "WorkflowFailed",
  "WorkflowCancelled",
  "WorkflowContinued",
]);
