"""PyTorch's milliseconds per training step for the models kiln benchmarks.

The same models, optimizer and batch sizes as examples/mlp.kiln and
examples/cnn.kiln (SGD lr 0.05 momentum 0.9, cross-entropy), fp32 with TF32
off, timed in three modes: eager, torch.compile (optional, --compile) and
the whole step (forward, backward, optimizer) captured in one CUDA graph.
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


MODELS = {"mlp": (mlp, (784,)), "cnn": (cnn, (1, 28, 28))}


def measure(name, batch, mode, steps):
    make, shape = MODELS[name]
    torch.manual_seed(0)
    model = make().cuda()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    x = torch.rand(batch, *shape, device="cuda")
    y = torch.randint(0, 10, (batch,), device="cuda")

    def step():
        opt.zero_grad(set_to_none=False)
        loss = F.cross_entropy(model(x), y)
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
    start = time.perf_counter()
    for _ in range(20):
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
    parser.add_argument("--compile", action="store_true",
                        help="also time torch.compile (slow to start)")
    args = parser.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    modes = ["eager", "graph"] + (["compile"] if args.compile else [])
    for name, batch in [("mlp", 128), ("mlp", 4096), ("cnn", 256)]:
        for mode in modes:
            print(json.dumps(measure(name, batch, mode, args.steps)),
                  flush=True)


if __name__ == "__main__":
    main()
