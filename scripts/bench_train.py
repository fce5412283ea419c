"""Training and encoding throughput of VAE-1 and VAE-2 (samples/s), with a linear autoencoder as yardstick.

Run: ``.venv/bin/python scripts/bench_train.py [--device auto] [--batch-size 64]``.
Writes docs/_generated/bench_train_<device>.rst. Training = the package's own
step (:func:`dustvae.models.train.training_step`: forward, loss, backward,
clip, AdamW step) on random standardised vectors; encode = posterior means.

How close to the limit: each model's floating-point work per training
sample is counted by ``torch.utils.flop_counter.FlopCounterMode`` over one
step (forward and backward of its convolutions and linear layers), and the
achieved rate (that work times samples/s) is set against a dense float32
matrix product's rate measured in the same run on the same threads
(:func:`matmul_rate`), the fastest thing the machine does.
"""

from __future__ import annotations

import argparse

import torch
from torch.utils.flop_counter import FlopCounterMode

from _bench import Report, best_time
from dustvae.analysis import registry
from dustvae.models.train import DEFAULT_BETA, training_step
from dustvae.models.vae import DilatedConvVAE, model_name
from dustvae.devices import resolve_device


def train_rate(model: torch.nn.Module, x: torch.Tensor, batch: int, amp: bool, steps: int) -> float:
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def run():
        for i in range(steps):
            xb = x[(i * batch) % (len(x) - batch):][:batch]
            training_step(model, opt, xb, DEFAULT_BETA, amp=amp)
        if x.is_cuda:
            torch.cuda.synchronize()

    run()
    return steps * batch / best_time(run, repeat=2)


def step_flops(model: torch.nn.Module, x: torch.Tensor, batch: int, amp: bool) -> float:
    """Floating-point operations per sample of one training step (forward and backward), as torch counts them."""
    opt = torch.optim.SGD(model.parameters(), lr=0.0)  # the step's optimiser adds no counted matrix work
    with FlopCounterMode(display=False) as counter:
        training_step(model, opt, x[:batch], DEFAULT_BETA, amp=amp)
    return counter.get_total_flops() / batch


def matmul_rate(device: torch.device, n: int = 2048) -> float:
    """FLOP/s of a dense float32 ``n x n`` matrix product on ``device`` (best of a few)."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)

    def run():
        for _ in range(4):
            a @ b
        if device.type == "cuda":
            torch.cuda.synchronize()

    run()
    return 4 * 2 * n**3 / best_time(run, repeat=3)


def encode_rate(model: DilatedConvVAE, x: torch.Tensor) -> float:
    model.eval()

    def run():
        with torch.inference_mode():
            model.encode_standardised(x)
        if x.is_cuda:
            torch.cuda.synchronize()

    run()
    return len(x) / best_time(run)


class LinearVAE(DilatedConvVAE):
    """Yardstick: the same interface with one linear encoder and decoder layer."""

    def __init__(self, latent_dim: int):
        super().__init__(latent_dim)
        self.encoder = torch.nn.Identity()
        self.head = torch.nn.Linear(1360, 2 * latent_dim)
        self.decoder_input = torch.nn.Identity()
        self.decoder = torch.nn.Linear(latent_dim, 1360)

    def encode_standardised(self, x_std):
        mean, logvar = self.head(x_std).chunk(2, dim=-1)
        return mean, logvar


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch-size", type=int, default=None, help="[default: 64 on CPU, 256 on GPU]")
    parser.add_argument("--steps", type=int, default=None)
    args = parser.parse_args()
    device = resolve_device(args.device)
    batch = args.batch_size or (256 if device.type == "cuda" else 64)
    steps = args.steps or (200 if device.type == "cuda" else 12)
    amp = device.type == "cuda"
    x = torch.randn(max(4096, batch * 4), 1360, device=device)
    report = Report(f"bench_train_{device.type}", f"VAE throughput ({device.type})",
                    f"{'model':>14} {'params':>10} {'train samples/s':>16} {'encode samples/s':>17}"
                    f" {'train vs linear':>16} {'3000-sample epoch s':>20}"
                    f" {'GFLOP/sample':>13} {'GFLOP/s':>8} {'of matmul':>10}")
    torch.manual_seed(0)
    yard = train_rate(LinearVAE(85).to(device), x, batch, amp, steps)
    peak = matmul_rate(device)
    for latent in sorted(registry.TABLE_VAES, reverse=True):
        name = registry.label(model_name(latent), latent)
        model = DilatedConvVAE(latent).to(device)
        rate = train_rate(model, x, batch, amp, steps)
        enc = encode_rate(model, x[:2048])
        work = step_flops(model, x, batch, amp)
        row = (f"{name:>14} {sum(p.numel() for p in model.parameters()):>10,} {rate:>16.0f} {enc:>17.0f} "
               f"{yard / rate:>15.1f}x {3000 / rate:>20.1f} {work / 1e9:>13.3f} {work * rate / 1e9:>8.1f} {work * rate / peak:>10.0%}")
        report.add(row)
    notes = [f"Batch {batch}, {'bfloat16 autocast' if amp else 'float32'} on {device}. 'train vs linear' is how many times "
             f"slower a training step is than a one-layer linear VAE of 85 latents ({yard:.0f} samples/s) in the same run. "
             "Targets: an epoch over 3000 samples well under a minute on 2 CPU cores; over 20k samples/s for VAE-2 on a GPU.",
             "",
             "Limit: 'GFLOP/sample' is one training step's work per sample (forward and backward) as "
             "torch.utils.flop_counter counts it; 'GFLOP/s' that work at the training rate; 'of matmul' its fraction "
             f"of a dense float32 2048 x 2048 matrix product's rate in the same run ({peak / 1e9:.1f} GFLOP/s)."]
    report.write(notes)


if __name__ == "__main__":
    main()
