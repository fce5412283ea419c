"""The VAE family, its loss, training and checkpoints."""

from .checkpoint import load_checkpoint, load_model, save_checkpoint
from .model_config import ModelConfig
from .loss import kl_divergence, log_normal_pdf, negative_elbo
from .train import DEFAULT_BETA, TrainConfig, TrainResult, train, training_split
from .vae import DilatedConvVAE, model_name

__all__ = [
    "DilatedConvVAE", "ModelConfig", "model_name", "TrainConfig", "TrainResult", "DEFAULT_BETA", "train", "training_split",
    "load_checkpoint", "load_model", "save_checkpoint", "kl_divergence", "log_normal_pdf", "negative_elbo",
]
