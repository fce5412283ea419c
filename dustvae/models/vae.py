"""VAE-1, VAE-2 and their family: 1D dilated-convolution VAEs over the 1360-long WST vector.

The original VAE-1 and VAE-2 tables call the layers Conv2D with shapes
``(1, n, c)``; they act along one axis, so here they are ``Conv1d`` over
length ``n`` with ``c`` channels. Choices the tables leave open, made here:

* The first convolution has ``first_channels`` = 16 channels (the table
  prints 1, which would make the first block a single scalar filter).
* Encoder lengths 1360 -> 680 -> 170 (-> 85) are realised with strides
  2, 4 (and 2), and paddings 27, 13, 6 (and 13) for kernels 28, 14, 7 (and
  14) at dilation 2: the smallest paddings that give the table's lengths.
* Transposed convolutions use Keras' ``padding="same"`` semantics: output
  length = input length x stride, cropping the full output symmetrically.
* VAE-2's first decoder stage is (170, 128), not the tables' (85, 128): a
  stride-2 transposed convolution cannot keep length 85, and (170, 128)
  continues the doubling to the table's (340, 64).
* BatchNorm momentum 0.9 in Keras' convention is PyTorch's 0.1 (the default).

Members with ``latent_dim > 85`` use VAE-1's trunk (encoder to (170, 32),
decoder from (170, 32)); those with ``latent_dim <= 85`` use VAE-2's (extra
encoder block to (85, 16), decoder from (85, 32)). ``latent_dim=170`` is
VAE-1 and ``latent_dim=85`` is VAE-2, exactly.

Variants beyond the tables, reported beside VAE-1 and VAE-2, never instead
of them:

* ``linear_path=True`` (``vae-D+lin``): a linear map from the standardised
  input is added to the encoder head and a linear map from z to the decoder
  output, so the network only has to learn what a linear compression (PCA)
  misses.
* ``vae-D+pca``: the same architecture with its linear paths set from the
  training split's PCA and its convolutional paths silenced, so that it
  starts exactly where PCA ends (:func:`dustvae.models.pca_init.init_from_pca`).
* ``output_stage``: the tables end in a single-channel transposed convolution
  followed by ReLU and BatchNorm, then a linear one. A single ReLU channel
  zeroes about half its outputs at initialisation and can die altogether
  (the decoder then returns one constant vector). ``"linear"`` drops that
  ReLU and BatchNorm (same shapes as the table; ``vae-D+linout``),
  ``"wide"`` gives the stage :data:`WIDE_CHANNELS` channels
  (``vae-D+wideout``). ``"table"`` is the default.

The model carries the training set's per-coefficient mean and std as
buffers: :meth:`encode` takes and :meth:`decode` returns normalised log2
vectors, never standardised ones.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict

import torch
from torch import nn

from .model_config import INPUT_LENGTH, OUTPUT_STAGES, TARGETS, ModelConfig, model_name  # noqa: F401  (re-exported)

#: Log-variance is clamped to this range (exp stays finite in float16/bfloat16 too).
LOGVAR_RANGE = (-12.0, 8.0)
#: Channels of the next-to-last decoder stage with ``output_stage="wide"``.
WIDE_CHANNELS = 16


class CroppedConvTranspose1d(nn.Module):
    """Transposed convolution with Keras' ``padding="same"``: length in x stride out."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int):
        super().__init__()
        self.conv = nn.ConvTranspose1d(in_channels, out_channels, kernel_size, stride=stride)
        self.stride, self.kernel_size = stride, kernel_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x)
        target = x.shape[-1] * self.stride
        left = (out.shape[-1] - target) // 2
        return out[..., left : left + target]


def _conv_block(cin: int, cout: int, kernel: int, stride: int, padding: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv1d(cin, cout, kernel, stride=stride, dilation=2, padding=padding),
        nn.ReLU(),
        nn.BatchNorm1d(cout, momentum=0.1),
    )


def _tconv_block(cin: int, cout: int, kernel: int, stride: int) -> nn.Sequential:
    return nn.Sequential(CroppedConvTranspose1d(cin, cout, kernel, stride), nn.ReLU(), nn.BatchNorm1d(cout, momentum=0.1))


class DilatedConvVAE(nn.Module):
    """The dilated-convolution VAE family (VAE-1, VAE-2 and other latent sizes).

    Parameters
    ----------
    latent_dim : int
        Size of the latent space: 170 gives VAE-1, 85 gives VAE-2; other
        sizes reuse the trunk of the nearer one (see the module docstring).
    first_channels : int
        Channels of the first convolution.
    linear_path : bool
        Add linear encoder and decoder paths beside the convolutional ones.
    output_stage : {"table", "linear", "wide"}
        The decoder's (1360, 1) stage before the linear output: as in the
        tables (ReLU and BatchNorm on one channel), without ReLU and
        BatchNorm, or with :data:`WIDE_CHANNELS` channels.
    pca_init : bool
        Records that the weights started from the training split's PCA
        (set by :func:`dustvae.models.pca_init.init_from_pca`; needs
        ``linear_path``). Only the name and the checkpoint record it.
    target : {"patch", "map"}
        What the model was trained to reconstruct (:data:`TARGETS`): the
        patch's own vector, or its map-level statistics. Only the name and
        the checkpoint record it.

    Notes
    -----
    Public surface, as in the original design: :meth:`encode` (mean and log-variance),
    :meth:`reparameterize`, :meth:`decode`, :meth:`sample` (from the prior).
    """

    def __init__(self, latent_dim: int = 85, first_channels: int = 16, linear_path: bool = False,
                 output_stage: str = "table", pca_init: bool = False, target: str = "patch"):
        super().__init__()
        self.spec = ModelConfig(int(latent_dim), int(first_channels), bool(linear_path), output_stage, bool(pca_init),
                                target)  # checked there; the attributes below read it
        self.small = latent_dim <= 85  # VAE-2 trunk
        blocks = [
            _conv_block(1, first_channels, 28, 1, 27),  # (1360, c1)
            _conv_block(first_channels, 128, 14, 2, 13),  # (680, 128)
            _conv_block(128, 32, 7, 4, 6),  # (170, 32)
        ]
        if self.small:
            blocks.append(_conv_block(32, 16, 14, 2, 13))  # (85, 16)
        self.encoder = nn.Sequential(*blocks, nn.Flatten())
        flat = 85 * 16 if self.small else 170 * 32
        self.head = nn.Linear(flat, 2 * latent_dim)  # "Dense 2d": mean and log-variance

        self.base_length = 85 if self.small else 170
        self.decoder_input = nn.Linear(latent_dim, 32 * self.base_length)  # "Dense 5440" / "Dense 2720"
        self.decoder = nn.Sequential(
            nn.Unflatten(1, (32, self.base_length)),
            nn.BatchNorm1d(32, momentum=0.1),
            _tconv_block(32, 128, 14, 2),  # (340, 128) / (170, 128)
            _tconv_block(128, 64, 14, 1 if not self.small else 2),  # (340, 64)
            _tconv_block(64, 32, 28, 2),  # (680, 32)
            *_output_stage(output_stage),  # (1360, 1) [(1360, 16) if wide], then (1360, 1), linear output
            nn.Flatten(),
        )
        self.linear_encoder = nn.Linear(INPUT_LENGTH, 2 * latent_dim) if linear_path else None
        self.linear_decoder = nn.Linear(latent_dim, INPUT_LENGTH) if linear_path else None
        self.register_buffer("data_mean", torch.zeros(INPUT_LENGTH))
        self.register_buffer("data_std", torch.ones(INPUT_LENGTH))

    # -- what the model is (its ModelConfig, the one home of these) --------------------------
    latent_dim = property(lambda self: self.spec.latent_dim, doc="Latent size.")
    first_channels = property(lambda self: self.spec.first_channels, doc="Channels of the first convolution.")
    linear_path = property(lambda self: self.spec.linear_path, doc="Whether the linear paths are there.")
    output_stage = property(lambda self: self.spec.output_stage, doc="The decoder's last stage.")
    pca_init = property(lambda self: self.spec.pca_init, doc="Whether the weights started at a linear optimum.")
    target = property(lambda self: self.spec.target, doc="What the model reconstructs.")

    # -- standardisation ------------------------------------------------------------------
    def set_standardisation(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Store the training set's per-coefficient mean and std (std floored at 1e-6)."""
        self.data_mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.data_std.copy_(torch.clamp(torch.as_tensor(std, dtype=torch.float32), min=1e-6))

    def standardise(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised log2 vectors -> the standardised space the networks see."""
        return (x - self.data_mean) / self.data_std

    def destandardise(self, x_std: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`standardise`."""
        return x_std * self.data_std + self.data_mean

    # -- the four operations -----------------------------------------------------------------
    def encode_standardised(self, x_std: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and (clamped) log-variance of q(z|x) from standardised vectors."""
        h = self.head(self.encoder(x_std.unsqueeze(1)))
        if self.linear_encoder is not None:
            h = h + self.linear_encoder(x_std)
        mean, logvar = h.chunk(2, dim=-1)
        return mean, torch.clamp(logvar, *LOGVAR_RANGE)

    def decode_standardised(self, z: torch.Tensor) -> torch.Tensor:
        """Standardised reconstruction from latents."""
        out = self.decoder(self.decoder_input(z))
        if self.linear_decoder is not None:
            out = out + self.linear_decoder(z)
        return out

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of q(z|x) for normalised log2 vectors ``x`` (N, 1360)."""
        return self.encode_standardised(self.standardise(x))

    @staticmethod
    def reparameterize(mean: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None,
                       eps: torch.Tensor | None = None) -> torch.Tensor:
        """Draw ``z = mean + exp(logvar / 2) * eps`` with ``eps ~ N(0, I)`` (drawn here unless given)."""
        if eps is None:
            eps = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        return mean + torch.exp(0.5 * logvar) * eps

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Normalised log2 vectors (N, 1360) from latents (N, latent_dim)."""
        return self.destandardise(self.decode_standardised(z))

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` vectors decoded from draws of the prior N(0, I)."""
        device = self.data_mean.device
        z = torch.randn((n, self.latent_dim), generator=generator, device=device)
        return self.decode(z)

    def forward(self, x_std: torch.Tensor, noise: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Training pass on standardised input: (reconstruction, mean, logvar, z).

        ``noise`` is the reparameterisation's N(0, I) draw, shape (N, latent_dim);
        by default it is drawn from torch's global generator.
        """
        mean, logvar = self.encode_standardised(x_std)
        z = self.reparameterize(mean, logvar, eps=noise)
        return self.decode_standardised(z), mean, logvar, z

    @property
    def output_conv(self) -> CroppedConvTranspose1d:
        """The decoder's last (linear) convolution: the end of the convolutional decoder path."""
        return self.decoder[-2]

    @classmethod
    def from_config(cls, config: ModelConfig) -> "DilatedConvVAE":
        """The model a :class:`ModelConfig` describes (untrained)."""
        return cls(**asdict(config))

    def config(self) -> dict:
        """Constructor arguments (the :class:`ModelConfig`), for checkpoints."""
        return asdict(self.spec)

    def fingerprint(self) -> str:
        """SHA-256 of every parameter and buffer: identifies these exact weights (e.g. for a fitted prior)."""
        digest = hashlib.sha256()
        for key, value in sorted(self.state_dict().items()):
            digest.update(key.encode())
            digest.update(value.detach().cpu().contiguous().numpy().tobytes())
        return digest.hexdigest()

    @property
    def name(self) -> str:
        """Name used in results (see :func:`model_name`)."""
        return self.spec.name


def _output_stage(kind: str) -> list[nn.Module]:
    """The last two decoder stages, both at length 1360, for each of :data:`OUTPUT_STAGES`."""
    if kind == "table":
        return [_tconv_block(32, 1, 56, 2), CroppedConvTranspose1d(1, 1, 56, 1)]
    if kind == "linear":  # no ReLU or BatchNorm on the single channel: it cannot die
        return [CroppedConvTranspose1d(32, 1, 56, 2), CroppedConvTranspose1d(1, 1, 56, 1)]
    return [_tconv_block(32, WIDE_CHANNELS, 56, 2), CroppedConvTranspose1d(WIDE_CHANNELS, 1, 56, 1)]
