/**
 * @spool/core — the pure heart of Spool: definitions, steps, history events, the replay engine,
 * the codec, errors, retry math, ids and the Backend interface. No I/O and no `node:*` imports.
 */
export * from "./backend/backend.ts";
export * from "./backend/integrity.ts";
export * from "./backend/lease.ts";
export * from "./backend/unhosted-work.ts";
export * from "./codec/index.ts";
export * from "./codec/input-fingerprint.ts";
export * from "./definitions/activity.ts";
export * from "./definitions/query.ts";
export * from "./definitions/schema.ts";
export * from "./definitions/signal.ts";
export * from "./definitions/workflow.ts";
export * from "./duration.ts";
export * from "./errors.ts";
export * from "./failure-class.ts";
export * from "./history/event-codec.ts";
export * from "./history/events.ts";
// A testing aid: named, so nothing else in the module becomes public by accident.
export { HistoryBuilder, type HistoryBuilderOptions, historyOf } from "./history/history-builder.ts";
export * from "./history/history-file.ts";
export * from "./history/started-event.ts";
export * from "./ids.ts";
export * from "./replay/describe.ts";
export * from "./replay/engine.ts";
export * from "./replay/executor.ts";
export * from "./retry-policy.ts";
export * from "./steps/child.ts";
export * from "./steps/concurrency.ts";
export * from "./steps/continue-as-new.ts";
export * from "./steps/patch.ts";
export * from "./steps/saga.ts";
export * from "./steps/side-effect.ts";
export * from "./steps/step.ts";
export * from "./steps/timer.ts";
