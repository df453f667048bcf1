/**
 * The workflows whose recorded histories live in this folder, by name.
 */
import type { WorkflowDefinition } from "spool";
import { thumbnailBatch } from "../../examples/fan-out/workflow.ts";
import { helloOrder } from "../../examples/hello/workflow.ts";
import { orderSaga } from "../../examples/order-saga/workflow.ts";
import { expenseApproval } from "../../examples/signals-and-timers/workflow.ts";
import { orderLifecycle } from "../../examples/state-machine/workflow.ts";

// biome-ignore lint/suspicious/noExplicitAny: definitions of any schema types
export const goldenWorkflows: WorkflowDefinition<any, any>[] = [
  helloOrder,
  thumbnailBatch,
  orderSaga,
  expenseApproval,
  orderLifecycle,
];
