"""deepprospect:trainmodel — train a zoo architecture on a training set and write an ONNX model file with its card."""

from __future__ import annotations

import os
from functools import partial

from qgis.core import (
    QgsProcessingOutputNumber,
    QgsProcessingOutputString,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterFile,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterString,
)

from ..core.errors import InputError
from ..core.outputs import check_writable
from ..core.sampling.labels import load_training_set
from ..models.draws import train_per_draw
from ..models.mfaf import BAND_INFLUENCE_HELP, gives_band_influence, write_band_influence
from ..models.training import (
    DEVICES,
    EARLY_STOPPING,
    OPTIMISERS,
    PRESETS,
    SCHEDULES,
    TrainSettings,
    apply_preset,
    save_model,
    train_model,
)
from ..models.zoo import architecture_options, available_models, model_info, parse_options
from .base import DOUBLE, INT, DeepProspectAlgorithm
from .parameters import DEVICE_HELP, explain, explained, name_list, named_enum
from .qgis_io import feedback_callbacks

_PRESETS = ["none", *PRESETS]
_PRESET_HELP = name_list([
    ("none", "the settings below"),
    ("he2024", "Adam, batch 16, cosine lr 1e-4 → 1e-5, 50 epochs, keeps the architecture"),
    ("gao2022", "ResNet50, SGD momentum 0.1, weight decay 1e-4, lr 0.01 halved every 30 epochs, batch 32, 120 epochs"),
    ("gao2023", "MFAF on ResNet18 (rates 1,6,12,18,24, β 0.4; options given add to these), SGD momentum 0.2, weight "
                "decay 1e-4, lr 0.02 × 0.6 every 30 epochs, batch 32, 220 epochs"),
    ("zhang2021", "ppf_cnn1d, lr 0.01, batch 128 (the paper's); SGD momentum 0.9, constant lr, 30 epochs, no class "
                  "weighting (the paper does not say: our choice)"),
])
# key (lower case = TrainSettings field), label, type, default, minimum, advanced
_NUMBERS = [
    ("EPOCHS", "Epochs", INT, 50, 1, False),
    ("BATCH_SIZE", "Batch size", INT, 16, 2, False),
    ("LEARNING_RATE", "Learning rate", DOUBLE, 1e-4, 0.0, False),
    ("MIN_LEARNING_RATE", "Final learning rate of the cosine schedule", DOUBLE, 1e-5, 0.0, True),
    ("MOMENTUM", "SGD momentum", DOUBLE, 0.9, 0.0, True),
    ("WEIGHT_DECAY", "Weight decay", DOUBLE, 0.0, 0.0, True),
    ("STEP_EPOCHS", "Step schedule: epochs per step", INT, 30, 1, True),
    ("STEP_FACTOR", "Step schedule: learning-rate factor per step", DOUBLE, 0.5, 0.0, True),
    ("PATIENCE", "Early stopping patience (epochs)", INT, 10, 1, True),
    ("MIN_EPOCHS", "Early stopping: epochs before an epoch can be kept or training stop", INT, 10, 1, True),
    ("SMOOTHING", "Early stopping: epochs averaged in the validation score (1 = none)", INT, 3, 1, True),
    ("NEGATIVE_SET", "Negative set to train on (0 … N−1)", INT, 0, 0, True),
    ("INPUT_NOISE", "Gaussian noise added to training inputs (standard deviation; 0 = none)", DOUBLE, 0.0, 0.0, True),
    ("MEMBERS", "Seed-ensemble members (seeds SEED … SEED+N−1, probabilities averaged)", INT, 1, 1, False),
    ("SEED", "Random seed", INT, 42, 0, False),
    ("MAX_PAIRS", "Pixel-pair models: at most this many pairs per split (0 = every pair)", INT, 0, 0, True),
    ("RANDOM_CROP", "Online augmentation: random crop size (cells; 0 = none; the model's patch size)", INT, 0, 0,
     True),
]


class TrainModel(DeepProspectAlgorithm):
    """Train one architecture of the zoo; the model file carries everything prediction needs to check."""

    TRAINING_SET, ARCHITECTURE, OPTIONS, PRESET, OPTIMISER, SCHEDULE = (
        "TRAINING_SET", "ARCHITECTURE", "OPTIONS", "PRESET", "OPTIMISER", "SCHEDULE")
    CLASS_WEIGHTING, EARLY_STOPPING, DEVICE, OUTPUT, CURVES, BAND_INFLUENCE = (
        "CLASS_WEIGHTING", "EARLY_STOPPING", "DEVICE", "OUTPUT", "CURVES", "BAND_INFLUENCE")
    VALIDATION_AUC, TEST_AUC, DEVICE_USED = "VALIDATION_AUC", "TEST_AUC", "DEVICE_USED"
    EACH_NEGATIVE_SET, DRAWS_TABLE = "EACH_NEGATIVE_SET", "DRAWS_TABLE"
    RANDOM_FLIPS, RANDOM_ROTATIONS = "RANDOM_FLIPS", "RANDOM_ROTATIONS"

    NAME = "trainmodel"
    DISPLAY_NAME = "Train prospectivity model"
    GROUP = "models"
    TAGS = (
        "deep learning", "neural network", "CNN", "training", "LeNet", "ResNet", "ViT", "MLP", "ONNX", "GPU",
    )
    MEMORY_HINT = "Lower the batch size (BATCH_SIZE)"
    HELP = (
        "Trains a network of the model zoo on a training set from 'Training samples from deposits' and writes one "
        ".onnx model file. The file's metadata holds a card: architecture, band names and order, the stack's "
        "transform and normalisation, patch and pixel size, CRS, accuracy / recall / F1 / AUC on the training, "
        "validation and test splits, the training history, seed, a hash of the data and library versions; "
        "'Prospectivity map' checks a stack against it.<br>"
        "<b>Architectures</b>: LeNet, AlexNet, VGG8, VGG16, MobileNetV2, ResNet50, ViT (he2024's six and more), "
        "he2024's ResNet50 with two added FC layers, the full-size ViT-B/16 (86 M weights: a GPU is advised, a "
        "CPU trains it slowly), ResNet18 and ShuffleNetV2 (gao2023 backbones), gao2023's MFAF on either (dilated "
        "branches, channel and spatial attention, self-distillation), the 1D CNN over each cell's element vector "
        "(zhang2021), an MLP over the element vector, and zhang2021's pixel-pair 1D CNN (ppf_cnn1d).<br>"
        "<b>Pixel pairs</b> (ppf_cnn1d; Zhang et al. 2021 after Li et al. 2016): in each split apart, the "
        "unaugmented cells (deposit cells and neighbours, barren and random negatives; never crops, flips, noise "
        "or SMOTE copies) are paired: two cells of one class make a similar pair (0), one of each a dissimilar "
        "pair (1); K deposit and N negative cells give K(K−1) + N(N−1) similar and K·N dissimilar pairs (136 + "
        "136 cells: 36,720 and 18,496, the paper's Table 2). The model scores pairs (metrics are on pairs, "
        "dissimilar = positive) and the card records the pair counts; apply it with 'Dual-window anomaly (pixel "
        "pairs)', not 'Prospectivity map'. A pair cap draws at most that many pairs per split, seeded. Preset "
        "zhang2021: the paper gives lr 0.01 and batch 128 only; it leaves the optimiser, epochs, schedule, "
        "weight decay and loss weighting open, and the preset chooses SGD momentum 0.9, a constant lr, 30 "
        "epochs, none and unweighted.<br>"
        "<b>One model per negative set</b> (option; zhang2021's Table 3, ten draws of random negatives): one "
        "model is trained on each of the training set's negative sets with the same settings, and the one with "
        "the highest validation AUC (then accuracy, then lowest training loss) is written; the optional draws "
        "table lists each draw's samples or pairs, training loss and validation and test accuracy and AUC.<br>"
        "<b>AFFCNN</b> (he2025, Computers &amp; Geosciences 205:106011; built from the paper's abstract): a 1D "
        "branch over the window's centre-cell element vector and a 2D branch over the window, merged by an "
        "adaptive fusion module. The abstract gives no layers, so: the 1D branch is three 1D convolutions along "
        "the bands, the 2D branch two blocks of 3×3 convolutions with max-pooling, the fusion is selective-kernel "
        "style (Li et al. 2019, CVPR: per-sample softmax weights over the two branches, summing to one), each "
        "branch has an auxiliary classifier, and training runs in three stages within the epochs: (1) the branches "
        "with their auxiliary classifiers, (2) the fusion and classifier with the branches frozen, (3) everything "
        "with the auxiliary losses (weight aux_weight, 0.3); no epoch before stage 3 is kept, and the card records the "
        "stages. Options: fusion=adaptive|concat, branches=both|1d|2d (ablations; one branch trains in one stage), "
        "stage_split=0.4,0.3,0.3 (shares of the epochs), aux_weight, width (features per branch, 64). The model "
        "file has two inputs (window and vector), which 'Prospectivity map' feeds.<br>"
        "<b>Seed ensemble</b>: members &gt; 1 trains that many copies with seeds SEED, SEED+1, … and writes their "
        "probability average as one model file (one map, one card). With tens of deposits the MLP seed ensemble "
        "with weight decay, input noise and several negatives per deposit is what scores best on spatially "
        "held-out deposits ('Spatial cross-validation'; the full pipeline's default).<br>"
        "<b>Presets</b> set the papers' hyper-parameters in one choice and train every epoch, as the papers did "
        "(no early stopping); 'none' uses the values given here.<br>"
        "<b>Device</b>: auto trains on an NVIDIA GPU when torch sees one (CUDA), else on the CPU; the log says "
        "which and why. The same training set, settings and seed give the same model on the CPU.<br>"
        "<b>Early stopping</b> watches the validation loss or AUC, averaged over the last few epochs (smoothing: "
        "a few validation deposits make one epoch's score noisy). No epoch before the minimum epochs is kept and "
        "training does not stop before it; after it, the epoch with the best averaged score is kept provided its "
        "training AUC is above 0.5, so a model worse than chance is never kept (if none is, the last epoch is). "
        "Without validation samples (e.g. the training set's split fell back for lack of deposit groups) early "
        "stopping is off and the last epoch is kept. The card records the monitor actually used and why the "
        "epoch was kept.<br><b>Online augmentation</b> (gao2022: random horizontal and vertical flips and a "
        "224 crop of 256 windows before each iteration): every training batch is flipped, rotated by 90° steps "
        "and/or cropped at random, with new seeded draws each epoch; validation, test and every score read the "
        "centre crop. With a crop c the model, its card and 'Prospectivity map' use patch size c (the c-window "
        "centred on each cell), so train on windows larger than the patch you want. Class weighting balances "
        "deposits and negatives in the loss. Cancel stops between "
        "batches and writes nothing."
    )

    def initAlgorithm(self, config=None):  # noqa: N802 - QGIS API name
        self.addParameter(QgsProcessingParameterFile(
            self.TRAINING_SET, "Training set", extension="npz"))
        self.addParameter(explained(
            named_enum(self.ARCHITECTURE, "Architecture", available_models()),
            name_list([(name, model_info(name).title) for name in available_models()])))
        self.addParameter(explained(QgsProcessingParameterString(
            self.OPTIONS, "Architecture options (name=value; …)", "", optional=True),
            "Options of the chosen architecture, e.g. 'width=32; dropout=0.2' for the MLP; the log lists what "
            "each architecture accepts, an unknown name is refused with the list, and the card records them. "
            "MFAF (gao2023): rates = dilation rates, one branch each (default 1,6,12,18,24; the paper's Table 6 also "
            "tried 1,2,4,8,10, 1,4,8,12,16 and 1,8,16,24,32); beta = self-distillation weight (0.4; Table 5 swept "
            "0-0.8: one run per value); channel_attention, spatial_attention = true/false (the Table 4 ablations); "
            "fusion = mean (averaged branch probabilities) or vote (share of the branches' votes). Loss: every "
            "branch's cross-entropy summed, plus beta × the KL divergence of each branch from the branches' mean "
            "probability (held fixed, temperature 1): the paper gives no formula for this term, so this is a "
            "reading of it.",
            advanced=True))
        self.addParameter(explained(named_enum(self.PRESET, "Paper preset", _PRESETS), _PRESET_HELP))
        self.add_numbers(_NUMBERS[:3])
        self.addParameter(explained(named_enum(self.OPTIMISER, "Optimiser", OPTIMISERS),
                                    "adam = Adam; sgd = SGD with momentum (see momentum and weight decay)."))
        self.addParameter(explained(named_enum(self.SCHEDULE, "Learning-rate schedule", SCHEDULES),
                                    "cosine: from the learning rate down to the final learning rate; step: "
                                    "multiplied by the step factor every step epochs; constant."))
        self.addParameter(explained(named_enum(self.EARLY_STOPPING, "Early stopping on", EARLY_STOPPING),
                                    "val_loss = validation loss; val_auc = validation AUC; off = train every epoch."))
        self.addParameter(QgsProcessingParameterBoolean(
            self.CLASS_WEIGHTING, "Weight the loss by inverse class frequency", True))
        self.addParameter(explained(named_enum(self.DEVICE, "Device", DEVICES), DEVICE_HELP))
        self.add_numbers(_NUMBERS[3:])
        self.addParameter(explained(QgsProcessingParameterBoolean(
            self.EACH_NEGATIVE_SET, "Train one model per negative set and keep the best on validation", False),
            "zhang2021 Table 3: every negative draw gets its model; the best validation AUC is written.",
            advanced=True))
        for key, label, text in (
                (self.RANDOM_FLIPS, "Online augmentation: random flips",
                 "Each training sample is flipped left-right and up-down, each with probability ½, anew every "
                 "epoch (gao2022)."),
                (self.RANDOM_ROTATIONS, "Online augmentation: random 90° rotations",
                 "Each training sample is rotated by 0, 90, 180 or 270° at random, anew every epoch.")):
            self.addParameter(explained(QgsProcessingParameterBoolean(key, label, False), text, advanced=True))
        explain(self, {
            "MIN_LEARNING_RATE": "The cosine schedule ends at this learning rate in the last epoch.",
            "MOMENTUM": "Momentum of SGD (used with the sgd optimiser only).",
            "STEP_EPOCHS": "The step schedule multiplies the learning rate by the step factor every this many epochs.",
            "STEP_FACTOR": "Factor applied to the learning rate at each step of the step schedule (0.5 halves it).",
            "MIN_EPOCHS": "No epoch before this one is kept, and training never stops earlier.",
            "SMOOTHING": "An epoch's validation score is the mean over this many last epochs (steadier with few "
                         "validation deposits).",
            "WEIGHT_DECAY": "L2 penalty on the weights; 1e-3 steadies small networks on tens of deposits.",
            "PATIENCE": "Epochs without a better averaged validation score before training stops.",
            "NEGATIVE_SET": "Which of the training set's negative sets (repeats) to train on.",
            "INPUT_NOISE": "Each training batch gets Gaussian noise of this standard deviation (z-scored bands).",
            "MAX_PAIRS": "Pair models: each split keeps at most this many pairs, drawn at random with the seed.",
            "RANDOM_CROP": "Each training sample is a random crop of this size of its window, anew every epoch; "
                           "validation, test and prediction use the centre crop, and the model's patch size is "
                           "this size (gao2022: 224 of 256). At most the training set's patch size.",
        })
        self.addParameter(QgsProcessingParameterFileDestination(
            self.OUTPUT, "Model file", "ONNX model (*.onnx)"))
        self.addParameter(QgsProcessingParameterFileDestination(
            self.CURVES, "Training curves", "PNG image (*.png)", optional=True, createByDefault=True))
        self.addParameter(explained(QgsProcessingParameterFileDestination(
            self.BAND_INFLUENCE, "Band influence (MFAF)", "CSV (*.csv)", optional=True, createByDefault=False),
            f"MFAF with channel attention only: one row per band with its weight, {BAND_INFLUENCE_HELP}; the card "
            "holds the same weights (extra.band_influence)."))
        self.addParameter(QgsProcessingParameterFileDestination(
            self.DRAWS_TABLE, "Negative draws table (one model per negative set)", "CSV files (*.csv)", optional=True,
            createByDefault=False))
        self.addOutput(QgsProcessingOutputNumber(self.VALIDATION_AUC, "Validation AUC"))
        self.addOutput(QgsProcessingOutputNumber(self.TEST_AUC, "Test AUC"))
        self.addOutput(QgsProcessingOutputString(self.DEVICE_USED, "Device used"))

    def compute(self, parameters, context, feedback):
        output = self.parameterAsFileOutput(parameters, self.OUTPUT, context)
        curves = self.parameterAsFileOutput(parameters, self.CURVES, context) or None
        influence_csv = self.parameterAsFileOutput(parameters, self.BAND_INFLUENCE, context) or None
        draws = self.parameterAsFileOutput(parameters, self.DRAWS_TABLE, context) or None
        each = self.parameterAsBool(parameters, self.EACH_NEGATIVE_SET, context)
        if draws and not each:
            raise InputError("The negative draws table comes from training one model per negative set: tick that "
                             "option, or leave the table unset.")
        for path in filter(None, (output, curves, influence_csv, draws)):
            check_writable(path)
        settings = self._settings(parameters, context, feedback)
        if influence_csv and not gives_band_influence(settings.architecture, settings.options):
            raise InputError("The band-influence CSV holds MFAF's channel-attention weights; "
                             f"{settings.architecture} with options {settings.options or '{}'} has none. Choose "
                             "mfaf_resnet18 or mfaf_shufflenet_v2 with channel attention, or leave the CSV empty.")
        path = self.parameterAsFile(parameters, self.TRAINING_SET, context)
        training_set = load_training_set(path, on_disk=True)
        feedback.pushInfo(f"Training set {os.path.basename(path)}: {len(training_set)} samples, bands "
                          f"{', '.join(training_set.manifest.get('band_names', []))}.")
        progress, is_cancelled = feedback_callbacks(feedback)
        train = partial(train_per_draw, table_path=draws) if each else train_model
        result = train(training_set, settings, progress=progress, is_cancelled=is_cancelled, log=feedback.pushInfo)
        save_model(result, training_set, output, curves)
        if influence_csv:
            write_band_influence(result.band_influence, influence_csv)
        feedback.pushInfo(f"Model file: {output} (epoch {result.best_epoch} kept; early stopping "
                          f"{result.early_stopping_used}).")
        return {
            self.OUTPUT: output, self.CURVES: curves, self.BAND_INFLUENCE: influence_csv,
            self.DEVICE_USED: result.device,
            self.VALIDATION_AUC: result.metrics.get("validation", {}).get("auc"),
            self.TEST_AUC: result.metrics.get("test", {}).get("auc"), self.DRAWS_TABLE: draws,
        }

    def _settings(self, parameters, context, feedback) -> TrainSettings:
        enum = lambda key: self.parameterAsEnumString(parameters, key, context)  # noqa: E731
        settings = TrainSettings(
            architecture=enum(self.ARCHITECTURE),
            options=parse_options(self.parameterAsString(parameters, self.OPTIONS, context)),
            optimiser=enum(self.OPTIMISER),
            schedule=enum(self.SCHEDULE),
            early_stopping=enum(self.EARLY_STOPPING),
            class_weighting=self.parameterAsBool(parameters, self.CLASS_WEIGHTING, context),
            device=enum(self.DEVICE),
            random_flips=self.parameterAsBool(parameters, self.RANDOM_FLIPS, context),
            random_rotations=self.parameterAsBool(parameters, self.RANDOM_ROTATIONS, context),
            **self.read_numbers(_NUMBERS, parameters, context),
        )
        preset = enum(self.PRESET)
        if preset != "none":
            changed = apply_preset(settings, preset)
            values = ", ".join(f"{key} {getattr(changed, key)}" for key in PRESETS[preset])
            feedback.pushInfo(f"Preset {preset}: {values} (the values given for these settings are not used, "
                              "except architecture options typed in OPTIONS, which are laid over the preset's).")
            settings = changed
        accepted = ", ".join(f"{key}={value}" for key, value in architecture_options(settings.architecture).items())
        feedback.pushInfo(f"Options of {settings.architecture}: {accepted or 'none'}; given: "
                          f"{'; '.join(f'{k}={v}' for k, v in settings.options.items()) or 'none'}.")
        feedback.pushInfo(f"Architecture {model_info(settings.architecture).title}, {settings.epochs} epochs, batch "
                          f"{settings.batch_size}, {settings.optimiser} lr {settings.learning_rate:g} "
                          f"({settings.schedule}), seed {settings.seed}.")
        return settings
