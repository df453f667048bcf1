/**
 * Runs an example by name: `pnpm example order-saga`. Each example's main() takes a SQLite path
 * (default ./spool-<name>.db) and prints what happens.
 */
const names = ["hello", "signals-and-timers", "fan-out", "order-saga", "state-machine"];
const name = process.argv[2];
if (!name || !names.includes(name)) {
  console.error(`usage: pnpm example <${names.join("|")}>`);
  process.exit(2);
}
if (name === "hello") {
  await import("./hello/main.ts");
} else {
  const mod = (await import(`./${name}/main.ts`)) as { main(opts: { path: string }): Promise<unknown> };
  await mod.main({ path: process.env.SPOOL_DB ?? `spool-${name}.db` });
}
