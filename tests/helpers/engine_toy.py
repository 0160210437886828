"""A tiny deterministic detector stand-in for the engine tests: a linear regressor with dropout, fed a
dataset whose augmentation draws from torch's global RNG (as data transforms do in the main process)."""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from rcnn.data.samplers import TrainingSampler, build_batch_data_loader


class ToyDataset(Dataset):
    def __init__(self, n: int = 12, noise: float = 8.0) -> None:
        g = torch.Generator().manual_seed(123)
        self.images = torch.rand(n, 3, 4, 4, generator=g) * 255
        self.values = torch.rand(n, generator=g) * 2 - 1
        self.noise = noise

    def __len__(self) -> int:
        return len(self.values)

    def __getitem__(self, i: int):
        image = self.images[i] + self.noise * torch.randn(3, 4, 4)  # random augmentation
        return image, {"value": self.values[i], "image_id": i}


def collate(batch):
    return [b[0] for b in batch], [b[1] for b in batch]


class ToyRegressor(nn.Module):
    """``model(images, targets) -> {"loss_reg", "loss_l1"}``; ``sleep`` slows every step down."""

    def __init__(self, sleep: float = 0.0, nan_at_call: int = 0) -> None:
        super().__init__()
        self.fc = nn.Linear(48, 1)
        self.drop = nn.Dropout(0.3)
        self.sleep = sleep
        self.nan_at_call = nan_at_call
        self.calls = 0

    def forward(self, images, targets):
        self.calls += 1
        if self.sleep:
            time.sleep(self.sleep)
        x = torch.stack([im.flatten() for im in images]) / 255.0
        pred = self.fc(self.drop(x)).squeeze(1)
        y = torch.stack([t["value"] for t in targets]).to(pred.dtype)
        loss_reg = F.mse_loss(pred, y)
        if self.calls == self.nan_at_call:
            loss_reg = loss_reg * float("nan")
        return {"loss_reg": loss_reg, "loss_l1": 0.1 * (pred - y).abs().mean()}


def toy_loader(batch_size: int = 4, seed: int = 0, rank: int = 0, world_size: int = 1, num_workers: int = 0):
    dataset = ToyDataset()
    sampler = TrainingSampler(len(dataset), seed=seed, rank=rank, world_size=world_size)
    return build_batch_data_loader(dataset, sampler, batch_size, collate, num_workers=num_workers)
