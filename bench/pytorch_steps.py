"""PyTorch's milliseconds per training step for the models kiln benchmarks.

The same models, optimizers and batch sizes as examples/mlp.kiln and
examples/cnn.kiln (SGD lr 0.05 momentum 0.9, cross-entropy) and
examples/gpt.kiln (AdamW, byte-level, context 256), fp32 with TF32 off,
timed in three modes: eager, torch.compile (optional, --compile) and the
whole step (forward, backward, optimizer) captured in one CUDA graph. The
GPT is timed with its attention written out (softmax of the masked scores,
as kiln's decomposition computes it: "gpt") and with PyTorch's fused
scaled_dot_product_attention ("gpt-sdpa").
Prints one JSON line per (model, batch, mode). Run by bench/run.sh in the
same session as kiln-bench.
"""
import argparse
import json
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
        self.wte = nn.Embedding(vocab, width)
        self.wpe = nn.Parameter(torch.randn(context, width) * 0.02)
        self.blocks = nn.Sequential(*[Block(width, heads, fused)
                                      for _ in range(layers)])
        self.ln_f = nn.LayerNorm(width)
        self.head = nn.Linear(width, vocab, bias=False)

    def forward(self, tokens):
        x = self.wte(tokens) + self.wpe
        return self.head(self.ln_f(self.blocks(x)))


MODELS = {"mlp": (mlp, (784,)), "cnn": (cnn, (1, 28, 28)),
          "gpt": (lambda: GPT(fused=False), None),
          "gpt-sdpa": (lambda: GPT(fused=True), None)}


def measure(name, batch, mode, steps):
    make, shape = MODELS[name]
    torch.manual_seed(0)
    model = make().cuda()
    if shape is None:  # a byte-level language model over context 256
        # capturable: the step count stays on the GPU, as graph capture
        # needs.
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3,
                                weight_decay=0.1,
                                capturable=mode == "graph")
        x = torch.randint(0, 256, (batch, 256), device="cuda")
        y = torch.randint(0, 256, (batch, 256), device="cuda")
    else:
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        x = torch.rand(batch, *shape, device="cuda")
        y = torch.randint(0, 10, (batch,), device="cuda")

    def loss_of(logits):
        return F.cross_entropy(logits.reshape(-1, logits.size(-1)),
                               y.reshape(-1))

    def step():
        opt.zero_grad(set_to_none=False)
        loss = loss_of(model(x))
        loss.backward()
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
    warm_steps = 20 if shape is not None else 5
    start = time.perf_counter()
    for _ in range(warm_steps):
        run()
    torch.cuda.synchronize()
    warmup = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(steps):
        run()
    torch.cuda.synchronize()
    ms = 1000 * (time.perf_counter() - start) / steps
    return {"framework": "pytorch " + torch.__version__, "model": name,
            "batch": batch, "mode": mode, "ms_per_step": round(ms, 5),
            "warmup_s": round(warmup, 3),
            "device": torch.cuda.get_device_name()}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--gpt-steps", type=int, default=50,
                        help="steps timed for the GPT (about 40 ms each)")
    parser.add_argument("--compile", action="store_true",
                        help="also time torch.compile (slow to start)")
    parser.add_argument("--models", default="mlp:128,mlp:4096,cnn:256,"
                        "gpt:64,gpt-sdpa:64",
                        help="comma-separated MODEL:BATCH pairs to time")
    args = parser.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    modes = ["eager", "graph"] + (["compile"] if args.compile else [])
    for pair in args.models.split(","):
        name, batch = pair.split(":")
        steps = args.gpt_steps if name.startswith("gpt") else args.steps
        for mode in modes:
            print(json.dumps(measure(name, int(batch), mode, steps)),
                  flush=True)


if __name__ == "__main__":
    main()
