"""Every default and limit of the explorer, each with its reason: the one place to change them.

Plain values, without Keras: the command line and the configurations are checked against these
before Keras (and JAX or TensorFlow) is imported, which takes seconds, so `--help` and a mistyped
value answer at once.
"""

import math

# --- MNIST's shape: facts of the data, not choices ---------------------------------------------
IMAGE_SHAPE = (28, 28)
NUM_CLASSES = 10
INPUT_DIM = math.prod(IMAGE_SHAPE)  # 784 pixels per flattened digit
# MNIST's digits were scaled, keeping their aspect ratio, to fit a 20x20 box, then centred in 28x28
# by their centre of mass (LeCun et al.); a digit drawn in the report is made the same way.
DIGIT_BOX = 20

# --- The backend ----------------------------------------------------------------------------------
BACKENDS = ("jax", "tensorflow")
# JAX: it trains these dense networks faster than TensorFlow on a CPU (docs/performance.md has the
# figures); TensorFlow stays supported with --backend.
DEFAULT_BACKEND = "jax"

# --- A model's own training (each configuration may set its own) ----------------------------------
DEFAULT_EPOCHS = 20  # where the default sweep's validation curves have flattened
DEFAULT_BATCH_SIZE = 128  # Keras' MNIST examples' choice: fast on a CPU, still noisy enough to generalise
# The default network: one hidden layer of 128 ReLU units and a softmax output, the smallest network
# the Keras guides start from, trained with Adam at its default learning rate.
DEFAULT_HIDDEN_UNITS = (128,)
DEFAULT_ACTIVATION = "relu"
DEFAULT_DROPOUT = 0.0  # no Dropout layers unless asked
DEFAULT_OUTPUT_ACTIVATION = "softmax"
DEFAULT_LOSS = "auto"  # the loss that suits the output activation (see config.models.AUTO_LOSS)
DEFAULT_OPTIMIZER = "adam"
DEFAULT_LEARNING_RATE = 1e-3  # Adam's own default

# --- Techniques beyond the network's shape: each off unless a configuration asks ------------------
LR_SCHEDULES = ("constant", "cosine", "warmup_cosine")
DEFAULT_LR_SCHEDULE = "constant"
# Warm-up then cosine: the rate climbs from 0 over the first 5% of the steps (Adam's moment
# estimates settle in the first few hundred steps), then follows a cosine down to 0 at the last step.
WARMUP_FRACTION = 0.05
# Named amounts of `augment`: rotation in degrees, shift in pixels, zoom as a fraction of the size.
# "standard" is what a digit's writer might do differently (Simard et al. 2003 and Ciresan et al.
# 2010 used such affine moves, beside elastic distortions); "light" is half of it.
AUGMENT_PRESETS = {
    "light": {"rotation": 5.0, "shift": 1.0, "zoom": 0.05},
    "standard": {"rotation": 10.0, "shift": 2.0, "zoom": 0.1},
}
MAX_ROTATION_DEGREES = 45.0  # past this a 6 and a 9, or a 2 and a 7, start to look alike
MAX_SHIFT_PIXELS = 6.0  # MNIST digits sit in a 20x20 box with 4 pixels of border
MAX_ZOOM = 0.5

# --- Limits that catch typos (an extra zero or three) before they allocate gigabytes -------------
MAX_EPOCHS = 1_000
MAX_BATCH_SIZE = 65_536
MAX_UNITS = 16_384
MAX_LAYERS = 32
MAX_REPEATS = 100
DEFAULT_MAX_TRIALS = 500  # a grid larger than this is refused unless sampled (`sample = N`)

# --- A sweep ---------------------------------------------------------------------------------------
DEFAULT_SEED = 42
DEFAULT_VALIDATION_SPLIT = 0.1  # 6,000 of MNIST's 60,000 training digits, per class
QUICK_TRAIN_DIGITS = 2_000  # --quick: enough for every class to appear, small enough for seconds
QUICK_TEST_DIGITS = 500
# Eight runs: the fewest with which the default sweep answers its own questions. Simulated on the
# spreads measured on full MNIST (benchmarks/comparisons.py; docs/results.md, "How the comparisons
# were chosen"), the two-way comparison detects the width effects the 7-run sweep measured (32, 64,
# 256 and 512 units against 128) with at least 88% power at 8 runs, 76% at 7, 35% at 5 and 3% at 3
# (256 units, +0.27 points, is the hardest), while keeping the family-wise error rate under 5%.
# Fused, each run costs one more group: about 2 minutes on full MNIST on two CPU cores (the 8-run
# default sweep took 15 min 36 s there).
DEFAULT_REPEATS = 8
# Bounds one fused model's size: its memory and compile time grow with the number of branches.
MAX_FUSED_MODELS = 16

# --- How training runs (the numbers are the same either way; only the speed changes) -------------
# Validation and test batches: inference only, so larger batches are faster and give the same
# figures (means over samples; only the rounding of the sums differs). See `eval_batch_size`.
EVAL_BATCH_SIZE = 1024
# Batches per compiled call. Keras then dispatches (and runs callbacks) once per 16 steps instead
# of every step; the computation is unchanged. Chosen with benchmarks/speed.py.
STEPS_PER_EXECUTION = 16
# On JAX a fused group that trains at least this many batches runs each call's 16 as one compiled
# loop (`engine.fusion.FusedModel`): about 0.9 ms saved a batch on the default sweep, against one
# more program to trace and compile per group, about 1 s with the compile cache warm and 3.4 s cold
# (docs/performance.md). The default sweep on full MNIST trains 8,440 batches; on the embedded
# sample, 720, where the loop cost 1 s a group and saved nothing measurable.
MIN_BATCHES_IN_ONE_CALL = 4_000
# Keras' urlretrieve has no timeout of its own; an offline machine would otherwise wait minutes.
KERAS_DOWNLOAD_TIMEOUT_SECONDS = 15

# --- Executors ---------------------------------------------------------------------------------------
EXECUTORS = ("local", "ray")
SCHEDULERS = ("fifo", "asha")  # asha stops weak configurations early (each then trains unfused)
DEFAULT_CPUS_PER_TRIAL = 1.0  # one core per trial: trials run side by side on a cluster's cores
RAY_MAX_FAILURES = 3  # retries of a trial whose worker or node died

# --- Search (--search) ----------------------------------------------------------------------------
# Without --trials or --budget a search stops after this long (the question a learner asks: "the
# best network in twenty minutes?"); the verification of its best comes on top.
DEFAULT_SEARCH_BUDGET_SECONDS = 20 * 60
# Candidates asked of Optuna at a time and trained as one fused model. Four share the per-step
# overhead (most of a small network's cost on a CPU) without leaving TPE long without results; a
# batch also stops growing once its networks pass SEARCH_BATCH_PARAMETERS together, so a batch of
# wide ones stays within a few seconds an epoch.
SEARCH_BATCH_SIZE = 4
SEARCH_BATCH_PARAMETERS = 3_000_000
# Successive halving over epochs (Optuna's SuccessiveHalvingPruner): rungs after 1, 3, 9, ...
# epochs, and at each rung a candidate goes on only if it is in the best third of the candidates
# that reached it so far (Optuna's asynchronous rule, the one Hyperband's brackets use).
SEARCH_MIN_EPOCHS = 1
SEARCH_REDUCTION_FACTOR = 3
# The best few candidates by validation accuracy are trained again on fresh seeds (--repeats each)
# and compared with paired statistics on the test set: a search's own best validation score is
# biased upwards by the selection, so it is never the result.
DEFAULT_VERIFY = 3
MAX_VERIFY = 20
MAX_SEARCH_TRIALS = 100_000

# --- The report's "Draw a digit" panel ----------------------------------------------------------------
# The page embeds each network's weights as float32, 5.3 bytes a parameter in base64: the default
# sweep's 13 networks (2.1 million parameters) make about 11 MB of page, which opens in a second.
# A network past a million parameters (two hidden layers of 1,000 units) would add 5 MB on its own,
# and past 4 million in all the page grows past 21 MB; such networks are left out, with a note.
DRAWING_MAX_PARAMETERS = 1_000_000  # per network
DRAWING_MAX_TOTAL_PARAMETERS = 4_000_000  # all the page's networks together, in leaderboard order
# How a network's first layer learned, for the report: a few of its units after a few epochs (and
# the last), in float16: 16 units x 784 pixels x 2 bytes x 5 epochs, about 125 KB a network, never
# whole models.
FIRST_LAYER_EPOCHS = (1, 2, 5, 10)
FIRST_LAYER_UNITS = 16
DRAWING_TEST_DIGITS = 40  # the best network's mistakes the page carries for "show me a test digit"

# --- Statistics ----------------------------------------------------------------------------------------
# 5% and 95%: the convention a reader of papers expects; every interval and verdict uses these.
ALPHA = 0.05
CONFIDENCE = 1 - ALPHA
# The power a "smallest detectable difference" and a "runs needed" are sized for: Cohen's
# convention, the one statsmodels' examples and most power tables use.
POWER = 0.8
# Past this many runs, "runs needed" says only "more than 1,000": the observed difference is then
# too small beside the spread between runs for more seeds to be the way to see it.
MAX_RUNS_NEEDED = 1000
