/**
 * @spool/worker — the Worker: claims tasks, replays workflows, runs activities, fires timers.
 */
export type { AbortReason } from "./activity-runner.ts";
export { consoleLogger, type Logger, type LogLevel, silentLogger } from "./logger.ts";
export type { WorkerOptions } from "./options.ts";
export { Worker } from "./worker.ts";
