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
#: How the transform is computed: "batched" (dustvae.wst.engine, equal to Kymatio's output to float32 rounding) or "kymatio".
ENGINE = "batched"
ENGINES = ("batched", "kymatio")
#: HEALPix's sentinel for missing pixels.
UNSEEN = -1.6375e30
#: Frames a HEALPix map may be in (COORDSYS or --frame); patches are cut and recorded in Galactic axes.
HEALPIX_FRAMES = ("galactic", "celestial", "ecliptic")
#: Pixel side in arcmin of the flat maps the package simulates (``simulate --size``, the datasets).
FLAT_PIXEL_SCALE_ARCMIN = 5.0
#: Where ``dustvae demo`` and the paper's scripts put and look for the default run.
DEMO_RUN = "runs/default"
#: The two latent sizes of the original VAE-1 and VAE-2 tables.
LATENT_VAE1 = 170
LATENT_VAE2 = 85

#: Training (see dustvae.models.train_config.TrainConfig). With these, VAE-2 on an 80-map make-dataset stopped early
#: at epoch 41 (best 26), and at 78 (best 63) with augmentation: the epoch limit is rarely reached.
TRAIN_EPOCHS = 200
TRAIN_BATCH_SIZE = 64
#: AdamW's peak learning rate; a cosine schedule takes it to TRAIN_LR * TRAIN_LR_FLOOR at the last epoch.
TRAIN_LR = 1e-3
TRAIN_LR_FLOOR = 0.01
TRAIN_WEIGHT_DECAY = 1e-4
#: KL weight against the mean squared log2 reconstruction error: the earlier default 0.01 mapped
#: with the data's mean variance (dustvae.models.loss), the plain ELBO with noise 0.04 log2.
TRAIN_BETA = 2.5e-6
TRAIN_WARMUP_EPOCHS = 10
#: What a model learns to reconstruct: the patch's own vector, or its map-level statistics (the leave-one-out
#: mean of the other training patches of its map; dustvae.models.train). The first is the default.
TRAIN_TARGETS = ("patch", "map")
#: KL forms of the loss (dustvae.models.loss): the closed form, or the single-sample Monte-Carlo estimate.
KL_FORMS = ("analytic", "mc")
#: Latent densities to sample from (dustvae.models.prior): N(0, I), or the mixture fitted by `dustvae fit-prior`.
PRIORS = ("normal", "fitted")
#: Optimisers of a synthesis (dustvae.synthesis.optimize); the first is the default.
SYNTHESIS_OPTIMIZERS = ("lbfgs", "adam")
#: What a synthesis matches: the WST vector, or the vector and the envelope statistics of the original map
#: (:mod:`dustvae.synthesis.envelopes`; only for targets computed from a map).
SYNTHESIS_CONSTRAINTS = ("wst", "wst+envelopes")
#: How compute-wst splits one sky (dustvae.sky.regions): not at all, or by region with a guard band.
SKY_SPLITS = ("none", "regions")
#: Decoder output stages: the tables' single ReLU+BatchNorm channel, that stage without them, or wider
#: (dustvae.models.vae). The first is the default.
OUTPUT_STAGES = ("table", "linear", "wide")
TRAIN_PATIENCE = 15
#: Gradient-norm clip: measured norms were 0.05-0.4 and no step of whole runs reached it (dustvae.models.train).
TRAIN_GRAD_CLIP = 1.0
#: Learning-rate factor of the PCA-started linear paths (``vae-D+pca``), which also get no weight decay:
#: Adam moves every weight by about lr per step whatever its gradient, and at the full lr one epoch took
#: the start from PCA's RMSE to several times it (dustvae.models.train).
TRAIN_PCA_LINEAR_LR_SCALE = 0.01
#: bfloat16 autocast of training steps on CUDA. Off: on an H200 it ran VAE-1 and VAE-2 at 0.78-0.83 of
#: float32's samples/s, at batch 64 and 1024 alike (docs/_generated/gpu_check.rst); these models' small
#: convolutions gain nothing from lower precision and pay for the casts.
TRAIN_BF16_AUTOCAST = False

#: The default dataset (see dustvae.dataset.DatasetSpec): 800 maps of 256 px, four
#: 128-px patches each, 3200 patches. At 128 px 29% of the vectors' variance is
#: within-map realisation noise, against 62% at 64 px (docs/_generated/noise_share.rst).
DATASET_MAPS = 800
DATASET_MAP_SIZE = 256
DATASET_PATCH_SIZE = 128
#: Sky model of the default dataset: "turbulence", "filaments" or "mixed" (dustvae.sky.models).
DATASET_MODEL = "mixed"

#: Synthesis (dustvae.synthesis): optimiser iterations, and Adam's step size on amplitude-normalised pixels.
SYNTHESIS_STEPS = 300
SYNTHESIS_ADAM_LR = 0.05
#: CPU threads of a synthesis: one never oversubscribes a shared machine, and its tensors are small (scripts/bench_synthesis.py compares).
SYNTHESIS_THREADS = 1

#: Names of the split codes a store holds, in code order (0 train, 1 validation, 2 test, 3 guard band of a
#: one-sky split); dustvae.io.store writes them beside the codes.
SPLIT_NAMES = ("train", "validation", "test", "guard")
TRAIN, VALIDATION, TEST, GUARD = range(len(SPLIT_NAMES))
#: Shares of maps (or sky regions) held out for validation and for test, wherever a split is made.
VALIDATION_FRACTION = 0.15
TEST_FRACTION = 0.15

#: Baselines an evaluation runs unless told (dustvae.analysis.evaluate.BASELINES lists all); the reduced-rank
#: regression ("rrr") is opt-in: it targets the map statistics, not the patch.
EVALUATE_BASELINES = ("rwst1", "rwst2", "pca", "pca-sym")
