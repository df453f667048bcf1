// Guards the PostgreSQL backend against diverging from the Backend contract: lost or duplicated events, double claims, stale writers winning, wrong queue semantics — the same suite SQLite passes.
import { afterAll } from "vitest";
import { describeBackend } from "./conformance/describe-backend.ts";
import { closeAdmin, openPg } from "./postgres/pg-harness.ts";

afterAll(closeAdmin);

// Each test gets its own schema (spool_test_<random>), created by init() and dropped afterwards.
describeBackend("PostgresBackend", async (o) => openPg(o));
