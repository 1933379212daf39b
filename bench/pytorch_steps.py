"""PyTorch's milliseconds per training step for the models kiln benchmarks.

The same models, optimizers and batch sizes as examples/mlp.kiln and
examples/cnn.kiln (SGD lr 0.05 momentum 0.9, cross-entropy),
examples/gpt.kiln (AdamW, byte-level, context 256) and its small twin
test/models/gpt_tiny.kiln ("gpt-tiny": context 16, width 32, 2 blocks of 2
heads; AdamW with beta2 0.99 and gradient clipping at norm 1, as the model
file says; its learning-rate schedule, one scalar a step, is left out),
fp32 with TF32 off.

On the GPU (--device cuda, the default; bench/run.sh) each model is timed
in three modes: eager, torch.compile (optional, --compile) and the whole
step (forward, backward, optimizer) captured in one CUDA graph. The GPT is
timed with its attention written out (softmax of the masked scores, as
kiln's decomposition computes it: "gpt") and with PyTorch's fused
scaled_dot_product_attention ("gpt-sdpa").

On the CPU (--device cpu; bench/cpu.sh) each model is timed eager on
--threads threads (torch.set_num_threads), and --gemm times single matrix
products (torch.matmul, which calls the BLAS PyTorch is linked against:
OpenBLAS once libopenblas0-pthread is installed). Set OPENBLAS_NUM_THREADS
to the same thread count and unset OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE
in this process's environment (bench/cpu.sh does): they hold OpenBLAS to
other kernels than the CPU's own. bench/cpu.sh also sets
OMP_WAIT_POLICY=PASSIVE: spinning OpenMP threads slow the steps down where
they share few cores with OpenBLAS's.

Prints one JSON line per (model, batch, mode) or matrix product.
"""
import argparse
import json
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def mlp():
    return nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512),
                         nn.ReLU(), nn.Linear(512, 10))


def cnn():
    return nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Conv2d(32, 64, 3, padding=1),
                         nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(64 * 7 * 7, 128), nn.ReLU(),
                         nn.Linear(128, 10))


class Block(nn.Module):
    """Pre-norm causal self-attention and a GELU MLP, as examples/gpt.kiln."""

    def __init__(self, width, heads, fused):
        super().__init__()
        self.heads, self.fused = heads, fused
        self.ln_1, self.ln_2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.fc = nn.Linear(width, 4 * width)
        self.out = nn.Linear(4 * width, width)

    def attention(self, x):
        b, t, c = x.shape
        q, k, v = self.qkv(x).split(c, dim=2)
        q, k, v = (z.view(b, t, self.heads, c // self.heads).transpose(1, 2)
                   for z in (q, k, v))
        if self.fused:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            s = (q @ k.transpose(-2, -1)) * (k.size(-1) ** -0.5)
            mask = torch.ones(t, t, dtype=torch.bool, device=x.device).tril()
            y = F.softmax(s.masked_fill(~mask, float("-inf")), dim=-1) @ v
        return self.proj(y.transpose(1, 2).reshape(b, t, c))

    def forward(self, x):
        x = x + self.attention(self.ln_1(x))
        return x + self.out(F.gelu(self.fc(self.ln_2(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(self, fused, vocab=256, context=256, layers=6, width=384,
                 heads=6):
        super().__init__()
        self.vocab, self.context = vocab, context
        self.wte = nn.Embedding(vocab, width)
        self.wpe = nn.Parameter(torch.randn(context, width) * 0.02)
        self.blocks = nn.Sequential(*[Block(width, heads, fused)
                                      for _ in range(layers)])
        self.ln_f = nn.LayerNorm(width)
        self.head = nn.Linear(width, vocab, bias=False)

    def forward(self, tokens):
        x = self.wte(tokens) + self.wpe
        return self.head(self.ln_f(self.blocks(x)))


def gpt_tiny():
    """test/models/gpt_tiny.kiln."""
    return GPT(fused=False, context=16, layers=2, width=32, heads=2)


# name: (model, input shape (None: a byte-level language model over the
# model's context, trained with AdamW), AdamW's beta2 and gradient clipping
# norm (None: none)).
MODELS = {"mlp": (mlp, (784,), None), "cnn": (cnn, (1, 28, 28), None),
          "gpt": (lambda: GPT(fused=False), None, (0.999, None)),
          "gpt-sdpa": (lambda: GPT(fused=True), None, (0.999, None)),
          "gpt-tiny": (gpt_tiny, None, (0.99, 1.0))}


def synchronize(device):
    if device == "cuda":
        torch.cuda.synchronize()


def device_name(device):
    if device == "cuda":
        return torch.cuda.get_device_name()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "cpu"


def blas_library():
    """The BLAS shared object this process has loaded (from its memory map),
    or "unknown"."""
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps
                     if "blas" in line.rsplit("/", 1)[-1]}
    except OSError:
        return "unknown"
    # OpenBLAS's own library first (Debian's libblas.so.3 of OpenBLAS
    # forwards to it), then any other.
    ranked = sorted(paths, key=lambda p: ("openblas" not in p.rsplit("/")[-1],
                                          "openblas" not in p, p))
    return (ranked or ["unknown"])[0]


def measure(name, batch, mode, steps, device="cuda", seconds=0.0,
            warm_steps=None):
    make, shape, adamw = MODELS[name]
    torch.manual_seed(0)
    model = make().to(device)
    clip = None
    if shape is None:  # a byte-level language model
        beta2, clip = adamw
        # capturable: the step count stays on the GPU, as graph capture
        # needs.
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3,
                                betas=(0.9, beta2),
                                weight_decay=0.1,
                                capturable=mode == "graph")
        x = torch.randint(0, model.vocab, (batch, model.context),
                          device=device)
        y = torch.randint(0, model.vocab, (batch, model.context),
                          device=device)
    else:
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        x = torch.rand(batch, *shape, device=device)
        y = torch.randint(0, 10, (batch,), device=device)

    def loss_of(logits):
        return F.cross_entropy(logits.reshape(-1, logits.size(-1)),
                               y.reshape(-1))

    def step():
        opt.zero_grad(set_to_none=False)
        loss = loss_of(model(x))
        loss.backward()
        if clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        return loss

    run = step
    if mode == "compile":
        run = torch.compile(step)
    if mode == "graph":
        # Warm up on a side stream (as the CUDA graphs docs require), then
        # capture one whole step and replay it.
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                step()
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            step()
        run = graph.replay
    if warm_steps is None:
        warm_steps = 20 if shape is not None else 5
    start = time.perf_counter()
    for _ in range(warm_steps):
        run()
    synchronize(device)
    warmup = time.perf_counter() - start
    if seconds > 0:
        # As many steps as take about `seconds`, judged by one step.
        start = time.perf_counter()
        run()
        synchronize(device)
        once = time.perf_counter() - start
        steps = max(steps, int(seconds / max(once, 1e-6)))
    start = time.perf_counter()
    for _ in range(steps):
        run()
    synchronize(device)
    ms = 1000 * (time.perf_counter() - start) / steps
    result = {"framework": "pytorch " + torch.__version__, "model": name,
              "batch": batch, "mode": mode, "ms_per_step": round(ms, 5),
              "steps": steps, "warmup_s": round(warmup, 3),
              "device": device_name(device)}
    if device == "cpu":
        result.update(threads=torch.get_num_threads(), blas=blas_library(),
                      omp_wait_policy=os.environ.get("OMP_WAIT_POLICY", ""))
    return result


def parse_gemm(text):
    """MxNxK:LAYOUT (LAYOUT nn, nt, tn or tt: whether A, B are stored
    transposed, A as [K, M], B as [N, K]) -> (M, N, K, LAYOUT)."""
    sizes, _, layout = text.partition(":")
    m, n, k = (int(v) for v in sizes.split("x"))
    layout = layout or "nn"
    if len(layout) != 2 or set(layout) - {"n", "t"}:
        raise ValueError(f"{text}: the layout is nn, nt, tn or tt")
    return m, n, k, layout


def measure_gemm(m, n, k, layout, runs, seconds):
    """The best of `runs` runs of one fp32 matrix product, C = op(A) op(B),
    after a warm-up call; each run calls it as often as takes about
    `seconds` (at least once) and counts the mean."""
    torch.manual_seed(0)
    a = torch.rand(m, k) * 2 - 1 if layout[0] == "n" else \
        (torch.rand(k, m) * 2 - 1).t()
    b = torch.rand(k, n) * 2 - 1 if layout[1] == "n" else \
        (torch.rand(n, k) * 2 - 1).t()
    c = torch.empty(m, n)
    start = time.perf_counter()
    torch.matmul(a, b, out=c)
    once = time.perf_counter() - start
    calls = max(1, int(seconds / max(once, 1e-9)))
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        for _ in range(calls):
            torch.matmul(a, b, out=c)
        best = min(best, (time.perf_counter() - start) / calls)
    return {"framework": "pytorch " + torch.__version__, "gemm": True,
            "m": m, "n": n, "k": k, "layout": layout,
            "ms": round(1000 * best, 5),
            "gflops": round(2 * m * n * k / best / 1e9, 2),
            "runs": runs, "calls": calls, "threads": torch.get_num_threads(),
            "blas": blas_library(), "device": device_name("cpu")}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--steps", type=int, default=500,
                        help="steps timed (with --seconds, at least)")
    parser.add_argument("--gpt-steps", type=int, default=50,
                        help="steps timed for the GPT (about 40 ms each)")
    parser.add_argument("--seconds", type=float, default=0.0,
                        help="time each model for about this long instead")
    parser.add_argument("--warm-steps", type=int, default=None,
                        help="steps run before timing (default 20, 5 for "
                        "the GPT)")
    parser.add_argument("--threads", type=int, default=0,
                        help="CPU threads (default: torch's default)")
    parser.add_argument("--compile", action="store_true",
                        help="also time torch.compile (slow to start)")
    parser.add_argument("--models", default=None,
                        help="comma-separated MODEL:BATCH pairs to time "
                        "(default mlp:128,mlp:4096,cnn:256,gpt:64,"
                        "gpt-sdpa:64; with --gemm, none)")
    parser.add_argument("--gemm", default="",
                        help="comma-separated MxNxK:LAYOUT matrix products "
                        "to time on the CPU (bench/gemm.mlir)")
    parser.add_argument("--gemm-runs", type=int, default=5)
    parser.add_argument("--gemm-seconds", type=float, default=0.2,
                        help="each GEMM run lasts about this long")
    args = parser.parse_args()
    if args.models is None:
        args.models = "" if args.gemm else \
            "mlp:128,mlp:4096,cnn:256,gpt:64,gpt-sdpa:64"
    if args.device == "cpu":
        if args.threads > 0:
            torch.set_num_threads(args.threads)
        for variable in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
            if variable in os.environ:
                print(f"warning: {variable} is set; it holds OpenBLAS to "
                      "other kernels than this CPU's (unset it)",
                      file=sys.stderr)
    else:
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    modes = ["eager"] if args.device == "cpu" else ["eager", "graph"]
    modes += ["compile"] if args.compile else []
    for pair in filter(None, args.models.split(",")):
        name, batch = pair.split(":")
        steps = args.gpt_steps if name.startswith("gpt") else args.steps
        for mode in modes:
            print(json.dumps(measure(name, int(batch), mode, steps,
                                     args.device, args.seconds,
                                     args.warm_steps)), flush=True)
    for text in filter(None, args.gemm.split(",")):
        print(json.dumps(measure_gemm(*parse_gemm(text), args.gemm_runs,
                                      args.gemm_seconds)), flush=True)


if __name__ == "__main__":
    main()
