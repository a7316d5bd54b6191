"""Known-answer vectors for Bagel.Core.Randomness.Xoshiro256StarStar, from an independent Python transcription of
the published algorithms (xoshiro256** by Blackman & Vigna, SplitMix64 seeding). Run: python3 xoshiro_vectors.py"""
import json

M = (1 << 64) - 1

def rotl(x, k):
    return ((x << k) | (x >> (64 - k))) & M

def splitmix64(state):
    state = (state + 0x9E3779B97F4A7C15) & M
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M
    return state, z ^ (z >> 31)

def xoshiro(s, count):
    s = list(s)
    out = []
    for _ in range(count):
        out.append((rotl((s[1] * 5) & M, 7) * 9) & M)
        t = (s[1] << 17) & M
        s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3]; s[2] ^= t
        s[3] = rotl(s[3], 45)
    return out

def seeded_state(seed):
    st, words = seed, []
    for _ in range(4):
        st, z = splitmix64(st)
        words.append(z)
    return words

print(json.dumps({
    "state_1_2_3_4": xoshiro([1, 2, 3, 4], 4),
    "seed_0_state": seeded_state(0),
    "seed_0_outputs": xoshiro(seeded_state(0), 4),
    "seed_42_outputs": xoshiro(seeded_state(42), 4),
}, indent=1))
