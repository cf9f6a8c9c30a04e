/**
 * Rendezvous (highest-random-weight) hashing: every instance that sees the same member list picks
 * the same owner for a device, and when a member leaves only its own devices move.
 */
export function ownerOf(deviceId: string, members: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestWeight = -1;
  const deviceHash = fnv1a(deviceId, 0x811c9dc5);
  for (const member of members) {
    const weight = mix(fnv1a(member, deviceHash));
    if (weight > bestWeight || (weight === bestWeight && best !== undefined && member < best)) {
      best = member;
      bestWeight = weight;
    }
  }
  return best;
}

function fnv1a(text: string, seed: number): number {
  let h = seed >>> 0;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/** A final avalanche (murmur3 fmix32), so similar member names do not give correlated weights. */
function mix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
