/**
 * @spool/cli — the `spool` command, also callable in-process as `main(argv, io)`.
 */
export { type CliIo, processIo } from "./io.ts";
export { main, USAGE } from "./main.ts";
