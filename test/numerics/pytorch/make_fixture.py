#!/usr/bin/python3
"""Writes mlp_fixture.json: PyTorch's training of a small MLP, for kiln to match.

The model is test/numerics/pytorch/mlp.kiln (and mlp_f32.kiln) written in
PyTorch: 20 -> 16 -> relu -> 12 -> relu -> 5, cross-entropy on integer
labels, batch 8. From one set of initial weights (torch.manual_seed(0) and
nn.Linear's default initialization) and three fixed batches, used in turn,
it trains 10 steps with each optimizer below, in float64 and in float32, and
records the loss of every step and every parameter after the last step.
Floats are written with repr, so they read back exactly; float32 values are
written as the doubles they are exactly.

Regenerate (needs Debian's python3-torch):
  /usr/bin/python3 test/numerics/pytorch/make_fixture.py \
      > test/numerics/pytorch/mlp_fixture.json
"""

import json
import sys

import torch
import torch.nn.functional as F

SIZES = [20, 16, 12, 5]
BATCH = 8
NUM_BATCHES = 3
STEPS = 10

# Each run: the kiln-optimizer options and the torch.optim optimizer that
# kiln's must equal.
RUNS = {
    "sgd_momentum": (
        "optimizer=sgd lr=0.1 momentum=0.9",
        lambda params: torch.optim.SGD(params, lr=0.1, momentum=0.9),
    ),
    "sgd_nesterov_wd": (
        "optimizer=sgd lr=0.1 momentum=0.9 weight-decay=0.001 nesterov=true",
        lambda params: torch.optim.SGD(
            params, lr=0.1, momentum=0.9, weight_decay=1e-3, nesterov=True
        ),
    ),
    "adam_wd": (
        "optimizer=adam lr=0.01 weight-decay=0.001",
        lambda params: torch.optim.Adam(
            params, lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-3
        ),
    ),
    "adamw": (
        "optimizer=adamw lr=0.01 weight-decay=0.01",
        lambda params: torch.optim.AdamW(
            params, lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01
        ),
    ),
}


class MLP(torch.nn.Module):
    """The model of mlp.kiln: linears l1, l2, l3 with relu between."""

    def __init__(self):
        super().__init__()
        self.l1 = torch.nn.Linear(SIZES[0], SIZES[1])
        self.l2 = torch.nn.Linear(SIZES[1], SIZES[2])
        self.l3 = torch.nn.Linear(SIZES[2], SIZES[3])

    def forward(self, x, label):
        h = F.relu(self.l1(x))
        h = F.relu(self.l2(h))
        return F.cross_entropy(self.l3(h), label)


def tensor_json(t):
    return {"shape": list(t.shape), "data": t.detach().reshape(-1).tolist()}


def params_json(model):
    return {name: tensor_json(p) for name, p in model.named_parameters()}


def train(initial, batches, dtype, make_optimizer):
    model = MLP().to(dtype)
    model.load_state_dict({k: v.to(dtype) for k, v in initial.items()})
    optimizer = make_optimizer(model.parameters())
    losses = []
    for step in range(STEPS):
        x, label = batches[step % len(batches)]
        optimizer.zero_grad()
        loss = model(x.to(dtype), label)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return {"losses": losses, "final_params": params_json(model)}


def dump(value, indent=0):
    """JSON with one key per line and each list of numbers on one line."""
    if isinstance(value, dict):
        pad = " " * (indent + 1)
        items = [
            pad + json.dumps(k) + ": " + dump(v, indent + 1) for k, v in value.items()
        ]
        return "{\n" + ",\n".join(items) + "\n" + " " * indent + "}"
    if isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value):
        pad = " " * (indent + 1)
        items = [pad + dump(v, indent + 1) for v in value]
        return "[\n" + ",\n".join(items) + "\n" + " " * indent + "]"
    return json.dumps(value)


def main():
    torch.manual_seed(0)
    model = MLP().to(torch.float64)
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    batches = [
        (
            torch.randn(BATCH, SIZES[0], dtype=torch.float64),
            torch.randint(0, SIZES[-1], (BATCH,)),
        )
        for _ in range(NUM_BATCHES)
    ]

    fixture = {
        "_generated_by": "test/numerics/pytorch/make_fixture.py",
        "_regenerate": "/usr/bin/python3 test/numerics/pytorch/make_fixture.py"
        " > test/numerics/pytorch/mlp_fixture.json (needs Debian's python3-torch)",
        "_torch_version": torch.__version__,
        "model": "20 -> 16 -> relu -> 12 -> relu -> 5, cross_entropy",
        "batch": BATCH,
        "steps": STEPS,
        "runs": {name: options for name, (options, _) in RUNS.items()},
    }
    for dtype, key in [(torch.float64, "float64"), (torch.float32, "float32")]:
        fixture[key] = {
            "initial_params": {
                name: tensor_json(p.to(dtype)) for name, p in initial.items()
            },
            "batches": [
                {"x": tensor_json(x.to(dtype)), "label": label.tolist()}
                for x, label in batches
            ],
            "runs": {
                name: train(initial, batches, dtype, make)
                for name, (_, make) in RUNS.items()
            },
        }
    sys.stdout.write(dump(fixture) + "\n")


if __name__ == "__main__":
    main()
