"""What serving a batch through DataLoader costs beside one MLP training step (issue 15).

    python experiments/loader_speed.py [--batch-size 64] [--repeats 2000] [--threads N]

Times, as medians over `--repeats`, (a) drawing one shuffled batch of MNIST through
`DataLoader` (the fast path: one fancy index, ToTensor and Normalize on the whole batch), (b) the
same through the item-by-item path (`collate_fn=default_collate`), and (c) one training step
(forward, backward, SGD update) of a 784-256-10 MLP on that batch, and prints (a) / (c). All
run with BLAS limited to one thread, as a training loop should (kernels/threads.py says why).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from tapegrad.kernels.threads import limit_blas_threads

import tapegrad as tg
from tapegrad import nn, optim
from tapegrad.data import MNIST, DataLoader, default_collate
from tapegrad.data import transforms as T


def median_seconds(step, repeats: int, clock=time.perf_counter) -> float:
    times = []
    for _ in range(repeats):
        start = clock()
        step()
        times.append(clock() - start)
    return statistics.median(times)


def endless(loader: DataLoader):
    while True:
        yield from loader


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2000)
    parser.add_argument("--data-dir", type=Path, default=None, help="default: $TAPEGRAD_DATA")
    parser.add_argument("--threads", type=int, default=None, help="tg.set_num_threads first")
    args = parser.parse_args(argv)
    if args.threads is not None:
        tg.set_num_threads(args.threads)
    tg.manual_seed(0)
    pipeline = T.Compose([T.ToTensor(), T.Normalize((0.1307,), (0.3081,))])
    dataset = MNIST(args.data_dir, train=True, transform=pipeline)
    fast = endless(DataLoader(dataset, batch_size=args.batch_size, shuffle=True))
    slow = endless(DataLoader(dataset, args.batch_size, shuffle=True, collate_fn=default_collate))
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))
    optimizer = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    images, labels = next(fast)

    def train_step() -> None:
        loss = tg.cross_entropy(model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    with limit_blas_threads():  # as a training loop runs (see kernels/threads.py)
        for step in (lambda: next(fast), lambda: next(slow), train_step):  # warm up
            median_seconds(step, 50)
        results = {
            "loader_s": median_seconds(lambda: next(fast), args.repeats),
            "item_by_item_s": median_seconds(lambda: next(slow), max(args.repeats // 10, 20)),
            "train_step_s": median_seconds(train_step, args.repeats),
            # CPU time of this process: what the work costs when other processes take turns
            "loader_cpu_s": median_seconds(lambda: next(fast), args.repeats, time.process_time),
            "train_step_cpu_s": median_seconds(train_step, args.repeats, time.process_time),
        }
    results["loader_share"] = results["loader_s"] / results["train_step_s"]
    results["loader_cpu_share"] = results["loader_cpu_s"] / results["train_step_cpu_s"]
    print(
        f"batch {args.batch_size}: DataLoader {1e6 * results['loader_s']:.0f} us "
        f"(item by item {1e6 * results['item_by_item_s']:.0f} us), MLP 784-256-10 training "
        f"step {1e6 * results['train_step_s']:.0f} us: the loader costs "
        f"{100 * results['loader_share']:.1f} % of a step\n"
        f"CPU time: DataLoader {1e6 * results['loader_cpu_s']:.0f} us, training step "
        f"{1e6 * results['train_step_cpu_s']:.0f} us: {100 * results['loader_cpu_share']:.1f} %"
    )
    return results


if __name__ == "__main__":
    main()
