# Writes a small deterministic text for the text-trainer tests: sentences of
# ten words in a random order (Python's random, seeded), one per line.
# Regenerate: python3 make_text.py FILE [BYTES]
import random
import sys

words = ["the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog",
         "and", "cat"]
size = int(sys.argv[2]) if len(sys.argv) > 2 else 30000
rng = random.Random(1)
text = ""
while len(text) < size:
    text += " ".join(rng.choice(words) for _ in range(8)) + ".\n"
open(sys.argv[1], "w").write(text[:size])
