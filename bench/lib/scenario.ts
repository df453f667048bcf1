/**
 * What a scenario is and what it reports. A scenario measures; it never asserts. Each figure is a
 * list of samples, one per round, summarised as median, min and max. A scenario that cannot run
 * here (a package not finished, a server not reachable) says so with `unavailable(reason)`.
 */
import { type Summary, summarise } from "./stats.ts";

/** SQLite durability settings measured side by side. */
export type Durability = "full" | "normal";

/** Options every scenario receives from `bench/run.ts`. */
export interface BenchOptions {
  /** One round and smaller sizes: checks the harness runs, not for publishing. */
  quick: boolean;
  /** Rounds per figure (5 by default, 1 with --quick). */
  rounds: number;
  /** Durabilities to run the SQLite scenarios at. */
  durabilities: Durability[];
  /** PostgreSQL server for the postgres scenario. */
  pgUrl: string;
  /** Run the untimed diagnostic passes (step costs); off under --cpu-prof, so they stay out of the profile. */
  diagnostics: boolean;
}

/** One reported figure: a sample per round and its summary. */
export interface Figure extends Summary {
  name: string;
  unit: string;
  durability?: Durability;
  /** Which way is better, so a reader of the JSON need not guess. */
  better: "higher" | "lower";
  samples: number[];
}

/** Everything a scenario reports. */
export interface ScenarioReport {
  name: string;
  title: string;
  status: "ok" | "unavailable" | "error";
  /** Why the scenario is unavailable or failed. */
  reason?: string;
  figures: Figure[];
  /** Sizes and tuning knobs the figures were measured with. */
  settings: Record<string, unknown>;
  /** Extra observations (not timed), e.g. backend calls per step. */
  details: Record<string, unknown>;
  notes: string[];
  wallMs: number;
}

/** A scenario module's default export. */
export interface Scenario {
  /** Short name for `--only`. */
  name: string;
  title: string;
  run(ctx: ScenarioContext): Promise<void>;
}

/** Thrown by `ctx.unavailable()` to end a scenario that cannot run here. */
export class Unavailable extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = "Unavailable";
  }
}

/** Collects one scenario's samples, settings and notes. */
export class ScenarioContext {
  private readonly samples = new Map<
    string,
    { name: string; unit: string; durability?: Durability; better: "higher" | "lower"; values: number[] }
  >();
  readonly settings: Record<string, unknown> = {};
  readonly details: Record<string, unknown> = {};
  readonly notes: string[] = [];

  constructor(
    readonly scenario: Scenario,
    readonly options: BenchOptions,
    private readonly logLine: (line: string) => void,
  ) {}

  /** Adds one round's sample of a figure. */
  sample(
    name: string,
    unit: string,
    value: number,
    opts: { durability?: Durability; better?: "higher" | "lower" } = {},
  ): void {
    const key = `${name}\u0000${opts.durability ?? ""}`;
    let s = this.samples.get(key);
    if (!s) {
      s = { name, unit, better: opts.better ?? "higher", values: [] };
      if (opts.durability) s.durability = opts.durability;
      this.samples.set(key, s);
    }
    s.values.push(value);
  }

  /** Records a setting the figures depend on. */
  setting(key: string, value: unknown): void {
    this.settings[key] = value;
  }

  /** Records an untimed observation. */
  detail(key: string, value: unknown): void {
    this.details[key] = value;
  }

  note(text: string): void {
    this.notes.push(text);
  }

  /** A progress line on stderr (the table goes to stdout). */
  log(line: string): void {
    this.logLine(`[${this.scenario.name}] ${line}`);
  }

  /** Ends the scenario as unavailable here, with the reason. */
  unavailable(reason: string): never {
    throw new Unavailable(reason);
  }

  /** The collected figures, in the order they were first sampled. */
  figures(): Figure[] {
    return [...this.samples.values()].map((s) => {
      const f: Figure = {
        name: s.name,
        unit: s.unit,
        better: s.better,
        samples: s.values,
        ...summarise(s.values),
      };
      if (s.durability) f.durability = s.durability;
      return f;
    });
  }
}
