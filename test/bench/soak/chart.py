"""ASCII chart of RSS (and fds) over time from a soak CSV."""
import sys

rows = []
with open(sys.argv[1]) as f:
    next(f)
    for line in f:
        p = line.strip().split(",")
        rows.append((int(p[0]), int(p[1]) / 1024, int(p[2])))
if not rows:
    sys.exit("no samples")
W, H = 72, 14
lo, hi = min(r[1] for r in rows), max(r[1] for r in rows)
lo, hi = lo * 0.98, hi * 1.02 + 0.1
cols = [rows[min(len(rows) - 1, i * len(rows) // W)] for i in range(min(W, len(rows)))]
grid = [[" "] * len(cols) for _ in range(H)]
for x, r in enumerate(cols):
    y = int((r[1] - lo) / (hi - lo) * (H - 1))
    grid[H - 1 - y][x] = "*"
print(f"RSS (MiB) over {rows[-1][0]} s; fds {min(r[2] for r in rows)}..{max(r[2] for r in rows)}")
for i, line in enumerate(grid):
    label = hi - (hi - lo) * i / (H - 1)
    print(f"{label:8.1f} |" + "".join(line))
print(" " * 9 + "+" + "-" * len(cols))
print(" " * 10 + f"0 s{' ' * (len(cols) - 10)}{rows[-1][0]} s")
