/**
 * What every example does around its workflow: a SQLite backend, a worker and a client in one
 * process, shut down cleanly afterwards.
 */
import { Client, consoleLogger, SqliteBackend, silentLogger, Worker, type WorkerOptions } from "spool";

/** Runs `body` with a started worker and a client on the SQLite file at `path`. */
export async function withSpool<T>(
  path: string,
  registry: Pick<WorkerOptions, "workflows" | "activities">,
  body: (client: Client) => Promise<T>,
  options: { quiet?: boolean } = {},
): Promise<T> {
  const backend = new SqliteBackend({ path });
  const worker = new Worker({
    backend,
    ...registry,
    logger: options.quiet ? silentLogger : consoleLogger("warn"),
    pollIntervalMs: { min: 5, max: 200 },
  });
  await worker.start();
  const client = new Client({ backend, workflows: registry.workflows, queryResponders: [worker] });
  try {
    return await body(client);
  } finally {
    await worker.shutdown();
    await backend.close();
  }
}
