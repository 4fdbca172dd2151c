#!/usr/bin/python3
"""PyTorch peer of configs/shapes_dcgan64.yaml: DCGAN-64 on 3x64x64 images, for throughput.

The networks and hyper-parameters are the config's:
  G: z (100) -> Linear(100, 8192, no bias) -> BN1d -> ReLU -> 512x4x4
     -> ConvT 256, 128, 64 (kernel 4, stride 2, padding 1, no bias), each BN2d + ReLU
     -> ConvT 3 (with bias) -> tanh: 3x64x64
  D: Conv 64 (bias) -> LeakyReLU 0.2 -> Conv 128, 256, 512 (no bias), each BN2d + LeakyReLU 0.2
     -> flatten -> Linear(8192, 1): a logit
  weights N(0, 0.02), BN scales N(1, 0.02), biases 0; BCE on logits, non-saturating G loss;
  Adam lr 2e-4, betas (0.5, 0.999) for both; batch 64.
One iteration is what one mpigan step does with g_step_noise: reuse: a D update on a real
batch and G(z) detached, then a G update through D on the same fakes (D's parameters need
no gradient there). Both networks stay in training mode.

Input: --data FILE.h5 (mpigan's data format: `images` uint8 (N, 3, 64, 64), read with h5py
into memory) or, without it, --synthetic N random images made in memory; batches are drawn
by a random permutation per epoch and mapped to [-1, 1] as mpigan's loader does.

Timing: --warmup iterations, then --reps windows of --measure-seconds each (or --iters
iterations each); images/s per window and their median, printed as one JSON line.
--threads N sets torch's intra-op threads and OMP/OpenBLAS threads before torch loads;
--bf16 runs the forward passes under torch.autocast('cpu', bfloat16).
"""
import argparse
import json
import os
import resource
import statistics
import sys
import time

NZ = 100


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--data", default="", help="mpigan data file with images uint8 (N, 3, 64, 64)")
    p.add_argument("--synthetic", type=int, default=1024, help="random images in memory when no --data")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--reps", type=int, default=3, help="timed windows; the median is reported")
    p.add_argument("--measure-seconds", type=float, default=20.0)
    p.add_argument("--iters", type=int, default=0, help="iterations per window (0: --measure-seconds)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--bf16", action="store_true", help="forward passes under torch.autocast('cpu', bfloat16)")
    return p.parse_args()


args = parse_args()
# before torch loads: torch.set_num_threads does not reach OpenBLAS's own pool
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(args.threads)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402


def up(cin, cout):
    return [nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True)]


def down(cin, cout):
    return [nn.Conv2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2, True)]


class Generator(nn.Module):
    def __init__(self):
        super().__init__()
        self.project = nn.Sequential(nn.Linear(NZ, 512 * 4 * 4, bias=False), nn.BatchNorm1d(512 * 4 * 4), nn.ReLU(True))
        self.body = nn.Sequential(*up(512, 256), *up(256, 128), *up(128, 64),
                                  nn.ConvTranspose2d(64, 3, 4, 2, 1), nn.Tanh())

    def forward(self, z):
        return self.body(self.project(z).view(-1, 512, 4, 4))


class Discriminator(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 64, 4, 2, 1), nn.LeakyReLU(0.2, True),
                                  *down(64, 128), *down(128, 256), *down(256, 512),
                                  nn.Flatten(), nn.Linear(512 * 4 * 4, 1))

    def forward(self, x):
        return self.body(x)


def dcgan_init(m):
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(m.weight, 0.0, 0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


def load_images():
    if args.data:
        import h5py
        with h5py.File(args.data, "r") as f:
            x = f["images"][...]
        if x.dtype != np.uint8 or x.ndim != 4 or x.shape[1:] != (3, 64, 64):
            sys.exit("peer_dcgan64: %s: images are %s %s, expected uint8 (N, 3, 64, 64)" % (args.data, x.dtype, x.shape))
        return torch.from_numpy(x), "file %s" % args.data
    g = torch.Generator().manual_seed(args.seed)
    return torch.randint(0, 256, (args.synthetic, 3, 64, 64), dtype=torch.uint8, generator=g), "synthetic"


def main():
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    data, source = load_images()
    n, B = data.shape[0], args.batch
    if n < B:
        sys.exit("peer_dcgan64: %d images, fewer than the batch %d" % (n, B))
    G, D = Generator(), Discriminator()
    G.apply(dcgan_init)
    D.apply(dcgan_init)
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    bce = nn.BCEWithLogitsLoss()
    real_t, fake_t = torch.ones(B, 1), torch.zeros(B, 1)
    d_params = list(D.parameters())
    order = {"perm": torch.randperm(n), "at": 0}

    def batch():
        if order["at"] + B > n:
            order["perm"], order["at"] = torch.randperm(n), 0
        idx = order["perm"][order["at"]:order["at"] + B]
        order["at"] += B
        return data.index_select(0, idx).float().div_(127.5).sub_(1.0)

    def step():
        real = batch()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
            fake = G(torch.randn(B, NZ))
            opt_d.zero_grad(set_to_none=True)
            loss_d = bce(D(real).float(), real_t) + bce(D(fake.detach()).float(), fake_t)
        loss_d.backward()
        opt_d.step()
        for p in d_params:
            p.requires_grad_(False)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
            opt_g.zero_grad(set_to_none=True)
            loss_g = bce(D(fake).float(), real_t)
        loss_g.backward()
        opt_g.step()
        for p in d_params:
            p.requires_grad_(True)
        return float(loss_d), float(loss_g)

    for _ in range(args.warmup):
        step()
    rates, losses = [], (0.0, 0.0)
    for _ in range(args.reps):
        iters, t0 = 0, time.perf_counter()
        while True:
            losses = step()
            iters += 1
            el = time.perf_counter() - t0
            if (args.iters and iters >= args.iters) or (not args.iters and el >= args.measure_seconds):
                break
        rates.append(B * iters / el)
    print(json.dumps({
        "bench": "dcgan64", "source": source, "threads": args.threads, "torch_threads": torch.get_num_threads(),
        "bf16": args.bf16, "batch": B, "warmup": args.warmup, "reps": args.reps,
        "images_per_s": round(statistics.median(rates), 2), "images_per_s_reps": [round(r, 2) for r in rates],
        "loss_d": round(losses[0], 4), "loss_g": round(losses[1], 4),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1),
        "torch": torch.__version__}))


if __name__ == "__main__":
    main()
