"""The tables of bench/cpu.sh, from the JSON lines it wrote (results.jsonl):

- training steps: per model and batch, kiln's milliseconds per step and
  samples per second (kiln-bench --device cpu), PyTorch's (pytorch_steps.py
  --device cpu), and kiln's speed over PyTorch's;
- GEMMs: per size, the GFLOP/s of kiln's generated kernel (kiln-gemm-bench)
  and of OpenBLAS through torch.matmul, and kiln's over OpenBLAS's.

A side that was not measured (no PyTorch) shows "-". Standard library only.

    python3 bench/cpu_report.py DIR/results.jsonl
"""
import json
import sys


def number(value, digits):
    return "-" if value is None else f"{value:,.{digits}f}"


def ratio(a, b):
    return "-" if a is None or b is None or b == 0 else f"{a / b:.2f}x"


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: cpu_report.py RESULTS.jsonl")
    with open(sys.argv[1]) as results:
        lines = [json.loads(line) for line in results if line.strip()]
    kiln_steps = [r for r in lines
                  if r.get("framework") == "kiln" and not r.get("gemm")]
    kiln_gemms = [r for r in lines
                  if r.get("framework") == "kiln" and r.get("gemm")]
    torch_lines = [r for r in lines
                   if r.get("framework", "").startswith("pytorch")]
    torch_steps = {(r["model"], r["batch"]): r for r in torch_lines
                   if not r.get("gemm")}
    torch_gemms = {(r["m"], r["n"], r["k"], r["layout"]): r
                   for r in torch_lines if r.get("gemm")}

    backend = kiln_steps[0]["backend"] if kiln_steps else "cpu"
    if torch_lines:
        first = torch_lines[0]
        blas = first.get("blas", "unknown").rsplit("/", 1)[-1]
        policy = first.get("omp_wait_policy") or "default"
        torch_side = (f"{first['framework']} eager ({first['threads']} "
                      f"threads, OMP_WAIT_POLICY {policy}, BLAS {blas}), "
                      f"{first['device']}")
    else:
        torch_side = "PyTorch not measured"
    print(f"\nTraining steps: kiln {backend} vs {torch_side}")
    header = (f"{'model':<10} {'batch':>6} {'kiln ms/step':>13} "
              f"{'samples/s':>11} {'PyTorch ms/step':>16} {'samples/s':>11} "
              f"{'kiln/PyTorch':>13}")
    print(header)
    print("-" * len(header))
    for r in kiln_steps:
        model, batch = r["model"].rsplit("-", 1)
        batch = int(batch)
        kiln_ms = r["ms_per_step"]
        torch_ms = torch_steps.get((model, batch), {}).get("ms_per_step")
        kiln_rate = batch * 1000 / kiln_ms
        torch_rate = batch * 1000 / torch_ms if torch_ms else None
        print(f"{model:<10} {batch:>6} {number(kiln_ms, 3):>13} "
              f"{number(kiln_rate, 0):>11} {number(torch_ms, 3):>16} "
              f"{number(torch_rate, 0):>11} "
              f"{ratio(kiln_rate, torch_rate):>13}")
    print("(samples/s: examples a second; a gpt-tiny sample is a window of "
          "16 bytes. kiln/PyTorch: kiln's samples/s over PyTorch's.)")

    isa = kiln_gemms[0]["isa"] if kiln_gemms else "-"
    print(f"\nGEMMs, fp32, C[M, N] = op(A) op(B) (layout nt: B stored [N, K]"
          f"): kiln's generated kernel ({isa}) vs OpenBLAS through "
          "torch.matmul, the same threads")
    header = (f"{'M x N x K':<18} {'layout':>6} {'kiln GFLOP/s':>13} "
              f"{'OpenBLAS GFLOP/s':>17} {'kiln/OpenBLAS':>14}  kiln schedule")
    print(header)
    print("-" * len(header))
    for r in kiln_gemms:
        key = (r["m"], r["n"], r["k"], r["layout"])
        blas = torch_gemms.get(key, {}).get("gflops")
        size = f"{r['m']} x {r['n']} x {r['k']}"
        print(f"{size:<18} {r['layout']:>6} {number(r['gflops'], 1):>13} "
              f"{number(blas, 1):>17} {ratio(r['gflops'], blas):>14}  "
              f"{r.get('schedule', '')}")

    blas = {r.get("blas", "") for r in torch_lines}
    if torch_lines and not all("openblas" in b for b in blas):
        print(f"\nwarning: PyTorch's BLAS is {', '.join(sorted(blas))}, not "
              "OpenBLAS (apt-get install libopenblas0-pthread)")


if __name__ == "__main__":
    main()
