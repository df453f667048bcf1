/**
 * `pnpm example fan-out`: thumbnails for 40 images, 8 at a time, then a manifest.
 */
import { withSpool } from "../shared.ts";
import { publish, resize, thumbnailBatch } from "./workflow.ts";

export async function main(opts: { path: string; quiet?: boolean; count?: number }) {
  return withSpool(
    opts.path,
    { workflows: [thumbnailBatch], activities: [resize, publish] },
    async (client) => {
      const urls = Array.from({ length: opts.count ?? 40 }, (_, i) => `https://img.example/${i}.png`);
      const handle = await client.start(thumbnailBatch, { urls, width: 320, parallelism: 8 });
      const result = await handle.result();
      const history = await handle.history();
      console.log(
        `resized ${result.count} images (${result.totalBytes} bytes) in ${history.length} history events`,
      );
      return result;
    },
    { quiet: opts.quiet },
  );
}

if (import.meta.url === `file://${process.argv[1]}`)
  await main({ path: process.env.SPOOL_DB ?? "spool-fan-out.db" });
