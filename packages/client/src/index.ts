/**
 * @spool/client — the Client and WorkflowHandle.
 */
export { Client, type ClientOptions, type StartOptions } from "./client.ts";
export {
  describeRun,
  type PendingActivityDescription,
  type QueryResponder,
  type QuerySnapshot,
  type RunDescription,
  WorkflowHandle,
} from "./workflow-handle.ts";
