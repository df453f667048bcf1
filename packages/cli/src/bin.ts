#!/usr/bin/env node
/**
 * The `spool` executable.
 */
import { main } from "./main.ts";

// `spool list | head`: the reader closed the pipe, and what was left to print is unwanted. Exit
// quietly as other command-line tools do, instead of dying with an EPIPE stack trace.
for (const stream of [process.stdout, process.stderr]) {
  stream.on("error", (err: NodeJS.ErrnoException) => {
    if (err.code === "EPIPE") process.exit(process.exitCode ?? 0);
    throw err;
  });
}

process.exitCode = await main(process.argv.slice(2));
