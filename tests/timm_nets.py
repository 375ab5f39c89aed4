"""timm's ResNet-D (``timm/models/resnet.py``: ``ResNet(Bottleneck, [3, 4, 6, 3], stem_width=32,
stem_type='deep', avg_down=True)``, published as ``resnet50d``), ported with timm's module and key names, as an
oracle for the tests that load its weights; and weights moved away from their initial values, so that a wrong
key or order shows in the logits."""

import torch
import torch.nn.functional as F
from torch import nn


def randomise(model, seed=0):
    """Weights and BN statistics away from their initial values, so that a wrong key or order shows."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if t.dtype.is_floating_point:
                if name.endswith("running_var"):
                    t.copy_(torch.rand(t.shape, generator=g) + 0.5)
                else:
                    t.copy_(torch.randn(t.shape, generator=g) * (0.05 if t.dim() > 1 else 0.2))
    return model


class TimmBottleneck(nn.Module):
    """timm's Bottleneck (stride in the 3x3) with avg_down's shortcut (timm's downsample_avg): pool, 1x1 conv, BN."""

    def __init__(self, cin, planes, stride):
        super().__init__()
        cout = planes * 4
        self.conv1, self.bn1 = nn.Conv2d(cin, planes, 1, bias=False), nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3, self.bn3 = nn.Conv2d(planes, cout, 1, bias=False), nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            pool = nn.AvgPool2d(2, stride, ceil_mode=True, count_include_pad=False) if stride > 1 else nn.Identity()
            self.downsample = nn.Sequential(pool, nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + (self.downsample(x) if self.downsample is not None else x))


class TimmResNetD(nn.Module):
    """timm's resnet50d: deep stem (3x3 convs 32, 32, 64 as conv1.0/.3/.6 with BNs .1/.4), avg_down shortcuts."""

    def __init__(self, layers=(3, 4, 6, 3), num_classes=1000):
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv2d(3, 32, 3, 2, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
                                   nn.Conv2d(32, 32, 3, 1, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
                                   nn.Conv2d(32, 64, 3, 1, 1, bias=False))
        self.bn1 = nn.BatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin = 64
        for i, (n, planes) in enumerate(zip(layers, (64, 128, 256, 512))):
            blocks = [TimmBottleneck(cin if b == 0 else planes * 4, planes, (1 if i == 0 else 2) if b == 0 else 1)
                      for b in range(n)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
            cin = planes * 4
        self.fc = nn.Linear(2048, num_classes)

    def forward(self, x):
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(x.mean((2, 3)))
