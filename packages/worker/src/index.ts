/**
 * @spool/worker — the Worker: claims tasks, replays workflows, runs activities, fires timers.
 */
export type { AbortReason } from "./activity-runner.ts";
export { consoleLogger, type Logger, type LogLevel, silentLogger } from "./logger.ts";
export { Worker, type WorkerOptions } from "./worker.ts";
