"""ResNet encoders with one input channel (spec §10.1).

Unlike the reference, the basic block (resnet18/34) supports a dilated last stage, so
``output_stride=16`` works for every depth.  ``width`` scales the stem and every stage
(64 = the standard ResNet; the bundled phantom model uses a small width).
"""

import torch
from torch import nn
from torch.ao.nn.quantized import FloatFunctional
from torch.ao.quantization import fuse_modules


def _conv3x3(nin: int, nout: int, stride: int = 1, dilation: int = 1) -> nn.Conv2d:
    return nn.Conv2d(nin, nout, 3, stride=stride, padding=dilation, dilation=dilation, bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        dilation: int = 1,
        downsample: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.conv1 = _conv3x3(inplanes, planes, stride, dilation)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU()
        self.conv2 = _conv3x3(planes, planes, 1, dilation)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        # a FloatFunctional so the residual add survives quantization; stateless in float
        self.add_relu = FloatFunctional()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x
        if self.downsample is not None:
            identity = self.downsample(x)
        return self.add_relu.add_relu(out, identity)

    def fuse_model(self) -> None:
        fuse_modules(self, [["conv1", "bn1", "relu"], ["conv2", "bn2"]], inplace=True)
        if self.downsample is not None:
            fuse_modules(self.downsample, ["0", "1"], inplace=True)


class Bottleneck(nn.Module):
    """ResNet V1.5 bottleneck (stride and dilation on the 3x3 conv)."""

    expansion = 4

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        dilation: int = 1,
        downsample: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu1 = nn.ReLU()
        self.conv2 = _conv3x3(planes, planes, stride, dilation)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu2 = nn.ReLU()
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.downsample = downsample
        self.add_relu = FloatFunctional()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.relu2(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        identity = x
        if self.downsample is not None:
            identity = self.downsample(x)
        return self.add_relu.add_relu(out, identity)

    def fuse_model(self) -> None:
        fuse_modules(
            self,
            [["conv1", "bn1", "relu1"], ["conv2", "bn2", "relu2"], ["conv3", "bn3"]],
            inplace=True,
        )
        if self.downsample is not None:
            fuse_modules(self.downsample, ["0", "1"], inplace=True)


_DEPTHS: dict[str, tuple[type[nn.Module], tuple[int, int, int, int]]] = {
    "resnet18": (BasicBlock, (2, 2, 2, 2)),
    "resnet34": (BasicBlock, (3, 4, 6, 3)),
    "resnet50": (Bottleneck, (3, 4, 6, 3)),
}

ENCODERS = tuple(_DEPTHS)


class ResNetEncoder(nn.Module):
    """Returns the pyramid ``[p1 (stem, 1/4), p2 (layer1, 1/4), p3 (1/8), p4 (1/16), p5]``.

    ``widths`` lists the output channels of layer1..layer4.
    """

    def __init__(self, name: str = "resnet50", width: int = 64, output_stride: int = 32) -> None:
        super().__init__()
        block, depths = _DEPTHS[name]
        self.inplanes = width
        self.conv1 = nn.Conv2d(1, width, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        widths: list[int] = []
        self.layer1 = self._stage(block, width, depths[0], 1, 1, widths)
        self.layer2 = self._stage(block, 2 * width, depths[1], 2, 1, widths)
        self.layer3 = self._stage(block, 4 * width, depths[2], 2, 1, widths)
        dilated = output_stride == 16
        self.layer4 = self._stage(
            block, 8 * width, depths[3], 1 if dilated else 2, 2 if dilated else 1, widths
        )
        self.widths: list[int] = widths
        self.stem_width = width

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _stage(
        self,
        block: type[nn.Module],
        planes: int,
        n: int,
        stride: int,
        dilation: int,
        widths: list[int],
    ) -> nn.Sequential:
        nout = planes * block.expansion  # type: ignore[attr-defined]
        downsample = None
        if stride != 1 or self.inplanes != nout:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, nout, 1, stride=stride, bias=False), nn.BatchNorm2d(nout)
            )
        blocks = [block(self.inplanes, planes, stride, dilation, downsample)]
        self.inplanes = nout
        blocks += [block(nout, planes, 1, dilation) for _ in range(1, n)]
        widths.append(nout)
        return nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        p1 = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        p2 = self.layer1(p1)
        p3 = self.layer2(p2)
        p4 = self.layer3(p3)
        p5 = self.layer4(p4)
        return [p1, p2, p3, p4, p5]

    def fuse_model(self) -> None:
        fuse_modules(self, ["conv1", "bn1", "relu"], inplace=True)
        for m in self.modules():
            if isinstance(m, (BasicBlock, Bottleneck)):
                m.fuse_model()
