#!/usr/bin/env python3
"""Independent oracle for kiln::runtime::shuffleForEpoch.

Re-implements std::seed_seq::generate and std::mt19937_64 from their
definitions in the C++ standard ([rand.util.seedseq], [rand.eng.mers]) plus
kiln's rejection-sampled bounded draw and Fisher-Yates loop, and prints the
permutations that DatasetTest.cpp's ShuffleIsPortable expects.

Regenerate with: python3 test/runtime/shuffle_oracle.py
"""

M32 = 0xFFFFFFFF
M64 = 0xFFFFFFFFFFFFFFFF


def seed_seq_generate(v, n):
    s = len(v)
    b = [0x8B8B8B8B] * n
    if n >= 623:
        t = 11
    elif n >= 68:
        t = 7
    elif n >= 39:
        t = 5
    elif n >= 7:
        t = 3
    else:
        t = (n - 1) // 2
    p = (n - t) // 2
    q = p + t
    m = max(s + 1, n)

    def T(x):
        return (x ^ (x >> 27)) & M32

    for k in range(m):
        r1 = (1664525 * T(b[k % n] ^ b[(k + p) % n] ^ b[(k - 1) % n])) & M32
        if k == 0:
            r2 = (r1 + s) & M32
        elif k <= s:
            r2 = (r1 + k % n + v[k - 1]) & M32
        else:
            r2 = (r1 + k % n) & M32
        b[(k + p) % n] = (b[(k + p) % n] + r1) & M32
        b[(k + q) % n] = (b[(k + q) % n] + r2) & M32
        b[k % n] = r2
    for k in range(m, m + n):
        total = (b[k % n] + b[(k + p) % n] + b[(k - 1) % n]) & M32
        r3 = (1566083941 * T(total)) & M32
        r4 = (r3 - k % n) & M32
        b[(k + p) % n] ^= r3
        b[(k + q) % n] ^= r4
        b[k % n] = r4
    return b


class Mt19937_64:
    N, M, R = 312, 156, 31

    def __init__(self, seed_words):
        # Seeding from a seed sequence: two 32-bit words per 64-bit state word.
        self.x = [
            seed_words[2 * i] | (seed_words[2 * i + 1] << 32) for i in range(self.N)
        ]
        self.i = self.N

    def __call__(self):
        if self.i >= self.N:
            lower = (1 << self.R) - 1
            for k in range(self.N):
                upper = self.x[k] & ~lower & M64
                y = upper | (self.x[(k + 1) % self.N] & lower)
                twist = 0xB5026F5AA96619E9 if y & 1 else 0
                self.x[k] = self.x[(k + self.M) % self.N] ^ (y >> 1) ^ twist
            self.i = 0
        z = self.x[self.i]
        self.i += 1
        z ^= (z >> 29) & 0x5555555555555555
        z ^= (z << 17) & 0x71D67FFFEDA60000
        z ^= (z << 37) & 0xFFF7EEE000000000
        z ^= z >> 43
        return z & M64


def uniform_below(rng, bound):
    threshold = (2**64 - bound) % bound
    while True:
        r = rng()
        if r >= threshold:
            return r % bound


def shuffle_for_epoch(n, seed, epoch):
    words = [seed & M32, seed >> 32, epoch & M32, (epoch >> 32) & M32]
    rng = Mt19937_64(seed_seq_generate(words, 624))
    values = list(range(n))
    for i in range(n, 1, -1):
        j = uniform_below(rng, i)
        values[i - 1], values[j] = values[j], values[i - 1]
    return values


if __name__ == "__main__":
    for epoch in (0, 1):
        print(f"seed=42 epoch={epoch}:", shuffle_for_epoch(10, 42, epoch))
