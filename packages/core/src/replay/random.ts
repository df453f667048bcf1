/**
 * Deterministic randomness for workflow code: a xoroshiro128+ generator (pure-rand) seeded from
 * the run id, so `ctx.random()` and `ctx.uuid()` give the same sequence on every replay.
 */
import { xoroshiro128plus } from "pure-rand/generator/xoroshiro128plus";

/** A seeded source of floats and UUIDs. */
export interface SeededRandom {
  random(): number;
  uuid(): string;
}

function seedOf(text: string): number {
  // FNV-1a: a stable 32-bit seed from the run id.
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h | 0;
}

/** Creates the generator for a run. */
export function seededRandom(seedText: string): SeededRandom {
  const rng = xoroshiro128plus(seedOf(seedText));
  const u32 = () => rng.next() >>> 0;
  const random = () => ((u32() >>> 5) * 67108864 + (u32() >>> 6)) / 9007199254740992;
  return {
    random,
    uuid() {
      const b = new Uint8Array(16);
      for (let i = 0; i < 16; i += 4) {
        const v = u32();
        b[i] = v & 0xff;
        b[i + 1] = (v >>> 8) & 0xff;
        b[i + 2] = (v >>> 16) & 0xff;
        b[i + 3] = (v >>> 24) & 0xff;
      }
      b[6] = ((b[6] as number) & 0x0f) | 0x40;
      b[8] = ((b[8] as number) & 0x3f) | 0x80;
      const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
      return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
    },
  };
}
