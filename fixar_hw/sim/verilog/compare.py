"""Compare the testbench's results with the golden model's (``fixar-hw testbench`` kit).

Run by the kit's ``make`` after the testbench wrote ``action.hex`` (one noisy action) and
``weights.hex`` (the parameter memory after one training step). ``kit.json`` says how the 32-bit
words of those dumps hold memory words, lanes and values; ``expected_*.hex`` are the golden
model's. Prints the action and ``N/N values equal`` for the networks after the step; exits 1 if
anything differs. Needs nothing but Python 3's standard library.
"""

import json
import sys
from pathlib import Path


def read_hex(path):
    """The 32-bit words of a ``$readmemh``/``$writememh`` file (``@`` addresses ignored)."""
    words = []
    for line in Path(path).read_text(encoding="ascii").splitlines():
        line = line.split("//", 1)[0].strip()
        if line and not line.startswith("@"):
            words += [int(token, 16) for token in line.split()]
    return words


def lane_values(beats, mem):
    """The signed lane values of the memory words in ``beats`` (low beat first), in order."""
    per, lanes = mem["beats"], mem["lanes"]
    width = mem["bits"] // lanes
    if len(beats) != mem["words"] * per:
        raise SystemExit(f"{mem['file']}: {len(beats)} words, expected {mem['words'] * per}")
    values = []
    for i in range(0, len(beats), per):
        word = sum(b << (32 * k) for k, b in enumerate(beats[i:i + per]))
        for lane in range(lanes):
            v = word >> (lane * width) & ((1 << width) - 1)
            values.append(v - (1 << width) if v >> (width - 1) else v)
    return values


def main():
    kit = json.loads(Path("kit.json").read_text(encoding="utf-8"))
    ok = True

    mem = kit["action"]
    got = lane_values(read_hex(mem["file"]), mem)
    want = lane_values(read_hex(mem["expected"]), mem)
    action = [got[p] for p in mem["positions"]]
    golden = [want[p] for p in mem["positions"]]
    scale = 2.0 ** mem["frac"]
    print("action: " + " ".join(f"{a} ({a / scale:+.4f})" for a in action)
          + ("  equals the golden model's" if action == golden else
             "  DIFFERS from the golden model's: " + " ".join(map(str, golden))))
    ok &= action == golden

    mem = kit["weights"]
    got = lane_values(read_hex(mem["file"]), mem)
    want = lane_values(read_hex(mem["expected"]), mem)
    total = equal = 0
    for tensor in mem["tensors"]:
        bad = [p for p in tensor["positions"] if got[p] != want[p]]
        total += len(tensor["positions"])
        equal += len(tensor["positions"]) - len(bad)
        if bad:
            print(f"  {tensor['name']}: {len(bad)} values differ, first at lane {bad[0]}: "
                  f"{got[bad[0]]} (golden {want[bad[0]]})")
    print(f"training step: {equal}/{total} values equal (online and target networks)")
    ok &= equal == total
    if got != want:
        print("the padding lanes of the parameter memory differ")
        ok = False
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
