/**
 * Parallel fan-out / fan-in: resize a batch of images in parallel, a bounded number at a time,
 * then aggregate. Each item is its own durable step, so a crash mid-batch re-runs only the items
 * whose results were not recorded.
 */
import { all, defineActivity, defineWorkflow } from "spool";
import { z } from "zod";

export const resize = defineActivity(
  {
    name: "images.resize",
    input: z.object({ url: z.string(), width: z.number().int().positive() }),
    output: z.object({ url: z.string(), bytes: z.number() }),
    retry: { maxAttempts: 3, initialInterval: "50ms" },
  },
  async ({ url, width }) => {
    // A stand-in for real work: the "thumbnail" size depends on the name and width.
    const bytes = (url.length * 997 + width * 13) % 50_000;
    return { url: `${url}?w=${width}`, bytes };
  },
);

export const publish = defineActivity(
  {
    name: "images.publish",
    input: z.object({ urls: z.array(z.string()) }),
    output: z.object({ manifest: z.string() }),
  },
  async ({ urls }) => ({ manifest: `manifest(${urls.length})` }),
);

export const thumbnailBatch = defineWorkflow(
  {
    name: "images.thumbnailBatch",
    input: z.object({
      urls: z.array(z.string()).max(10_000),
      width: z.number().int().positive(),
      parallelism: z.number().int().positive().default(8),
    }),
    output: z.object({ count: z.number(), totalBytes: z.number(), manifest: z.string() }),
  },
  async function* ({ urls, width, parallelism }, ctx) {
    const done: { url: string; bytes: number }[] = [];
    // Bounded fan-out: waves of `parallelism` concurrent steps; results keep input order.
    for (let i = 0; i < urls.length; i += parallelism) {
      const wave = urls.slice(i, i + parallelism).map((url) => resize({ url, width }));
      done.push(...(yield* all(wave)));
      ctx.log.info("wave done", { done: done.length, of: urls.length });
    }
    const { manifest } = yield* publish({ urls: done.map((d) => d.url) });
    return { count: done.length, totalBytes: done.reduce((s, d) => s + d.bytes, 0), manifest };
  },
);
