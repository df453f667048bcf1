// Guards the id generator: ids that collide, go backwards, or draw biased randomness (a broken
// random source would make ids guessable and collisions across processes likely).
import { describe, expect, it } from "vitest";
import { newId } from "../src/ids.ts";

const CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

describe("newId", () => {
  it("is a 26-character Crockford ULID, unique and increasing within the process", () => {
    const ids = Array.from({ length: 20_000 }, () => newId());
    for (const id of ids) expect(id).toMatch(/^[0-9A-HJKMNP-TV-Z]{26}$/);
    expect(new Set(ids).size).toBe(ids.length);
    for (let i = 1; i < ids.length; i++) expect(ids[i]! > ids[i - 1]!).toBe(true);
  });

  it("draws the random part uniformly over the alphabet", () => {
    // Fresh random parts only: within one millisecond the factory increments the last one.
    const counts = new Map<string, number>();
    let samples = 0;
    let last = "";
    while (samples < 9_600) {
      const id = newId();
      const time = id.slice(0, 10);
      if (time !== last) {
        last = time;
        for (const c of id.slice(10, 25)) counts.set(c, (counts.get(c) ?? 0) + 1);
        samples += 15;
      } else {
        // Spin into the next millisecond without burning the test's time on ids.
        const until = Date.now() + 1;
        while (Date.now() < until) {}
      }
    }
    expect([...counts.keys()].sort().join("")).toBe(CROCKFORD);
    const expected = samples / 32;
    // Chi-square with 31 degrees of freedom: p = 0.0001 at about 67.
    let chi = 0;
    for (const n of counts.values()) chi += (n - expected) ** 2 / expected;
    expect(chi).toBeLessThan(67);
  });
});
