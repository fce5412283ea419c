"""Defaults shared by the library and the command line (one source of truth)."""

#: WST scales, angles and order (docs/conventions.rst).
J = 5
L = 8
MAX_ORDER = 2
#: Patch side in pixels; a multiple of 2**J.
PATCH_SIZE = 256
#: Fields transformed by default, in vector order.
FIELDS = ("Q", "U")
#: Patches whose masked fraction exceeds this are dropped.
MAX_MASKED_FRACTION = 0.1
#: Boundary handling of the transform: "reflect" for sky patches, "periodic" for boxes.
BOUNDARY = "reflect"
BOUNDARIES = ("reflect", "periodic")
#: HEALPix's sentinel for missing pixels.
UNSEEN = -1.6375e30
#: The two latent sizes of the original VAE-1 and VAE-2 tables.
LATENT_VAE1 = 170
LATENT_VAE2 = 85

#: Training (see dustvae.models.train.TrainConfig).
TRAIN_EPOCHS = 200
TRAIN_BATCH_SIZE = 64
TRAIN_LR = 1e-3
#: KL weight; a 'balanced' Keras-style weight of 5e-5 corresponds to 0.034 (beta = 680 w, see dustvae.models.loss).
TRAIN_BETA = 0.01
TRAIN_WARMUP_EPOCHS = 10
TRAIN_PATIENCE = 15

#: The default dataset (see dustvae.wst.dataset.DatasetSpec): about 3200 patches.
DATASET_MAPS = 200
DATASET_MAP_SIZE = 256
DATASET_PATCH_SIZE = 64
