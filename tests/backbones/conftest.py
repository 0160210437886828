"""Shared fixtures for the backbone tests."""

from __future__ import annotations

import pytest
import torch
from torch import nn


@pytest.fixture
def fast_init(monkeypatch):
    """Make every ``torch.nn.init`` initialiser fill with zeros: building VGG-sized networks then costs a
    fraction of a second. For tests that overwrite the weights or only look at shapes and flags."""

    def zeros(tensor, *args, **kwargs):
        with torch.no_grad():
            return tensor.zero_()

    for name in dir(nn.init):
        if name.endswith("_") and not name.startswith("_") and callable(getattr(nn.init, name)):
            monkeypatch.setattr(nn.init, name, zeros)
