import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { sha256Hex } from "../src/sha256";

describe("sha256Hex", () => {
  it.each([
    ["", "empty"],
    ["abc", "short"],
    ["a".repeat(55), "one block, length just fits"],
    ["a".repeat(56), "length spills into a second block"],
    ["a".repeat(64), "exactly one block of data"],
    ["é ✓ 日本 😀", "multi-byte UTF-8"],
    ["mutation LikeviewLike($input: LikeInput!) { like(input: $input) { contentId } }".repeat(20), "long"],
  ])("%j (%s) matches node's", (text) => {
    expect(sha256Hex(text)).toBe(createHash("sha256").update(text, "utf8").digest("hex"));
  });
});
