"""The ``ssimref`` command line.

Every subcommand exits with 0 on success and with 2 and a one-line message on bad input;
outputs are written atomically and never overwrite an existing file without ``--force``.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from . import __version__
from .backend import ENGINES, arrays_for
from .config import COVARIANCES, WINDOWS, SSIMConfig, resolve_config
from .generative.trainer import TrainingInterrupted
from .io import atomic_path, load_images, save_json
from .kernels.centering import (check_power, double_center_inplace, negative_half_power,
                                training_centerer)
from .kernels.psd import DEFAULT_PSD_TOL, spectrum_report
from .pairwise import distance_matrix
from .tiling import resolve_working_memory, row_batches
from .validation import KINDS, check_kind, infer_data_range

PRESETS = {"paper": SSIMConfig.paper, "wang2004": SSIMConfig.wang2004,
           "skimage": SSIMConfig.skimage}


def add_image_arguments(parser, name="images", help_text=None):
    parser.add_argument(name, help=help_text or "a .npy/.npz file, a folder of PNG/JPEG "
                        "images (sorted by name, same size), or a bundled data set: 'digits' "
                        "(sklearn's 8x8 digits, data range 16) or 'mnist5k' (5,000 MNIST "
                        "digits 28x28, uint8; needs the 'data' extra), optionally with "
                        "':train', ':validation' or ':test' for one part of its fixed split "
                        "(e.g. mnist5k:test)")
    parser.add_argument("--color", action="store_true",
                        help="read folders as RGB (channels last) instead of grayscale")
    parser.add_argument("--key", help="array name inside a .npz file holding several")


def add_config_arguments(parser):
    """The SSIM conventions as flags; None means 'the preset's / library default'."""
    group = parser.add_argument_group("SSIM conventions (see ssimref.SSIMConfig)")
    group.add_argument("--preset", choices=sorted(PRESETS),
                       help="start from a named convention, then apply the flags below")
    group.add_argument("--window", choices=WINDOWS)
    group.add_argument("--size", type=int, help="window side in pixels (default 7)")
    group.add_argument("--sigma", type=float, help="Gaussian sigma (default 1.5)")
    group.add_argument("--stride", type=int, help="step between windows (default 1)")
    group.add_argument("--data-range", type=float, dest="data_range",
                       help="intensity range L (required for float images)")
    group.add_argument("--k1", type=float)
    group.add_argument("--k2", type=float)
    group.add_argument("--covariance", choices=COVARIANCES)


def add_compute_arguments(parser, backend=True, progress=True):
    """--working-memory (and --backend, --progress) for commands that compute distances."""
    parser.add_argument("--working-memory", type=float, dest="working_memory",
                        help="MiB for tiles (scikit-learn's working_memory when omitted)")
    if backend:
        parser.add_argument("--backend", default="auto", choices=ENGINES,
                            help="engine for the pairs: auto (numba on the CPU when "
                            "installed), reference, numba, or cupy (GPU; the matrix is "
                            "streamed to the output file tile by tile)")
    if progress:
        parser.add_argument("--progress", action="store_true", help="show a progress bar")


def config_from_args(args, default_data_range=None) -> SSIMConfig:
    base = PRESETS[args.preset](data_range=None) if args.preset else SSIMConfig()
    if base.data_range is None and args.data_range is None and default_data_range is not None:
        base = resolve_config(base, data_range=default_data_range)
    return resolve_config(base, window=args.window, size=args.size, sigma=args.sigma,
                          stride=args.stride, data_range=args.data_range, k1=args.k1,
                          k2=args.k2, covariance=args.covariance)


def _check_output(path, force):
    path = Path(path)
    if path.suffix != ".npy":
        raise ValueError(f"output {path} must end in .npy (NumPy format, no pickles)")
    sidecar = path.with_suffix(".json")
    for p in (path, sidecar):
        if p.exists() and not force:
            raise FileExistsError(f"{p} exists; pass --force to overwrite it")
    return path, sidecar


def write_matrix(path, shape, dtype, fill, force):
    """Compute a matrix straight into a temporary .npy memmap, then rename it into place."""
    with atomic_path(path, force) as tmp:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=shape)
        fill(out)
        out.flush()
        del out


def _split_field(data) -> dict:
    """``{"split": ...}`` for the sidecar when the images are a bundled data set."""
    return {} if data.split is None else {"split": data.split}


def cmd_distance(args) -> int:
    check_kind(args.kind)
    output, sidecar = _check_output(args.output, args.force)
    data = load_images(args.images, color=args.color, key=args.key)
    config = infer_data_range(config_from_args(args, data.data_range), [data.images],
                              names=("IMAGES",))
    n = data.images.shape[0]
    start = time.perf_counter()
    images = arrays_for(args.backend, data.images)
    write_matrix(output, (n, n), np.dtype(args.dtype),
                 lambda out: distance_matrix(images, kind=args.kind, config=config,
                                             out=out, progress=args.progress,
                                             working_memory=args.working_memory,
                                             backend=args.backend),
                 args.force)
    seconds = time.perf_counter() - start
    save_json(sidecar, {"what": f"SSIM distance matrix D(i, j) = ||D'_ij||_F, kind {args.kind}",
                        "source": data.source, "shape": [n, n], "dtype": args.dtype,
                        **_split_field(data),
                        "kind": args.kind, "config": asdict(config), "backend": args.backend,
                        "ssimref": __version__, "seconds": round(seconds, 3)}, args.force)
    print(f"wrote {output} ({n} x {n} {args.dtype}, {args.kind} distances of {data.source}; "
          f"{config.describe()}) and {sidecar.name} in {seconds:.2f} s")
    return 0


def cmd_verify(args) -> int:
    from .verification.cases import CASE_NAMES
    from .verification.conformance import check
    from .verification.conventions import PRESETS

    if args.list_cases:
        for name in CASE_NAMES:
            print(name)
        return 0
    if args.convention is not None and args.convention not in PRESETS:
        raise ValueError(f"--convention must be one of {sorted(PRESETS)}, got "
                         f"{args.convention!r}")
    cases = None if args.cases is None else [c.strip() for c in args.cases.split(",") if c]
    result = check(args.target, args.convention, cases=cases, tolerance=args.tolerance,
                   hide_torchvision=args.hide_torchvision)
    print(result)
    return 0 if result.passed else 1

def _check_plot_output(path, force):
    if path is None:
        return None
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"--plot {path} must end in .png")
    if path.exists() and not force:
        raise FileExistsError(f"{path} exists; pass --force to overwrite it")
    from .plotting import require_matplotlib
    try:
        require_matplotlib("--plot")
    except ImportError as exc:
        raise ValueError(str(exc)) from None
    return path


def cmd_kernel(args) -> int:
    check_kind(args.kind)
    power = check_power(args.power)
    if (args.test is None) != (args.output_test is None):
        raise ValueError("--test IMAGES and -o-test FILE go together: the test kernel "
                         "needs both its images and where to write it")
    output, sidecar = _check_output(args.output, args.force)
    outputs = [output, sidecar]
    if args.output_test is not None:
        output_test, sidecar_test = _check_output(args.output_test, args.force)
        outputs += [output_test, sidecar_test]
    plot = _check_plot_output(args.plot, args.force)
    if len({p.resolve() for p in outputs} | ({plot.resolve()} if plot else set())) != \
            len(outputs) + (plot is not None):
        raise ValueError("the outputs -o, -o-test and --plot must be different files")

    data = load_images(args.images, color=args.color, key=args.key)
    config = infer_data_range(config_from_args(args, data.data_range), [data.images],
                              names=("IMAGES",))
    test = None
    if args.test is not None:
        test = load_images(args.test, color=args.color, key=args.key)
        if tuple(test.images.shape[1:]) != tuple(data.images.shape[1:]):
            raise ValueError(f"--test images have shape {tuple(test.images.shape[1:])} but "
                             f"IMAGES have {tuple(data.images.shape[1:])}; kernels compare "
                             "images of one shape")
    n = data.images.shape[0]
    memory = resolve_working_memory(args.working_memory, "--working-memory")
    options = dict(kind=args.kind, config=config, squared=True, progress=args.progress,
                   working_memory=memory, backend=args.backend)
    state = {}

    def fill_train(out):
        distance_matrix(arrays_for(args.backend, data.images), out=out, **options)
        for rows in row_batches(n, 8 * n, memory):
            out[rows] = negative_half_power(out[rows], power, squared=True)
        if test is not None:
            state["centerer"] = training_centerer(out)
        double_center_inplace(out, working_memory=memory)
        if args.check_psd:
            state["psd"] = spectrum_report(np.asarray(out), DEFAULT_PSD_TOL)

    what = (f"SSIM kernel K = -1/2 H D^{power:g} H, D = SSIM distances of kind {args.kind}")
    start = time.perf_counter()
    write_matrix(output, (n, n), np.dtype("float64"), fill_train, args.force)
    seconds = time.perf_counter() - start
    meta = {"what": what, "source": data.source, **_split_field(data), "shape": [n, n],
            "dtype": "float64",
            "kind": args.kind, "power": power, "config": asdict(config),
            "ssimref": __version__, "seconds": round(seconds, 3)}
    if "psd" in state:
        meta["psd"] = asdict(state["psd"])
    save_json(sidecar, meta, args.force)
    print(f"wrote {output} ({n} x {n} float64, {what}, of {data.source}; {config.describe()}) "
          f"and {sidecar.name} in {seconds:.2f} s")
    if "psd" in state:
        print(f"spectrum: {state['psd']}")

    if test is not None:
        m = test.images.shape[0]

        def fill_test(out):
            distance_matrix(arrays_for(args.backend, test.images),
                            arrays_for(args.backend, data.images), out=out, **options)
            for rows in row_batches(m, 8 * n, memory):
                out[rows] = state["centerer"].transform(
                    negative_half_power(np.asarray(out[rows]), power, squared=True),
                    copy=False)

        start = time.perf_counter()
        write_matrix(output_test, (m, n), np.dtype("float64"), fill_test, args.force)
        seconds = time.perf_counter() - start
        save_json(sidecar_test, {
            "what": what + ", test rows against the training set, centred with the "
                    "training statistics (Bengio et al. 2004)",
            "source": test.source, **_split_field(test), "train_source": data.source,
            "train_kernel": str(output),
            "shape": [m, n], "dtype": "float64", "kind": args.kind, "power": power,
            "config": asdict(config), "ssimref": __version__,
            "seconds": round(seconds, 3)}, args.force)
        print(f"wrote {output_test} ({m} x {n} float64, test images {test.source} against "
              f"the training set) and {sidecar_test.name} in {seconds:.2f} s")

    if plot is not None:
        from .plotting import save_kernel_heatmap
        K = np.load(output, mmap_mode="r", allow_pickle=False)
        order = None if data.labels is None else np.argsort(data.labels, kind="stable")
        save_kernel_heatmap(K, plot, order=order, force=args.force,
                            title=f"SSIM kernel ({args.kind}, power {power:g}) of "
                                  f"{Path(str(data.source)).name}"
                                  + (", sorted by label" if order is not None else ""))
        print(f"wrote {plot}")
    return 0


def cmd_demo(args) -> int:
    from .demo import run_demo

    run_demo(args.output, force=args.force, seed=args.seed, limit=args.limit,
             plots=not args.no_plots, progress=args.progress)
    return 0

MMD_KERNELS = ("ssim", "ssim-rbf", "mean-ssim", "rbf")


def _mmd_kernel(args, config, A, B):
    """The kernel the ``mmd`` subcommand asked for, bandwidths from the pooled sample."""
    from .kernels import MeanSSIMKernel, RBFMixture, SSIMDistanceKernel, SSIMRBFKernel
    memory = args.working_memory
    if args.kernel == "ssim":
        return SSIMDistanceKernel(args.kind, args.power, config, working_memory=memory)
    if args.kernel == "ssim-rbf":
        return SSIMRBFKernel.from_median(A, B, args.kind, config, scale=args.scales[0],
                                         working_memory=memory)
    if args.kernel == "mean-ssim":
        return MeanSSIMKernel(config, working_memory=memory)
    return RBFMixture.from_median(A, B, scales=tuple(args.scales))


def cmd_mmd(args) -> int:
    from .mmd import mmd2, mmd_test
    check_kind(args.kind)
    if args.json:
        json_path = Path(args.json)
        if json_path.exists() and not args.force:
            raise FileExistsError(f"{json_path} exists; pass --force to overwrite it")
    if args.permutations < 0:
        raise ValueError(f"--permutations must be >= 0, got {args.permutations}")
    if args.permutations and args.estimator == "linear":
        raise ValueError("the permutation test uses the biased or unbiased estimator; pass "
                         "--permutations 0 with --estimator linear")
    a = load_images(args.a, color=args.color, key=args.key)
    b = load_images(args.b, color=args.color, key=args.key)
    implied = {r for r in (a.data_range, b.data_range) if r is not None}
    config = config_from_args(args, implied.pop() if len(implied) == 1 else None)
    if args.kernel != "rbf":
        config = infer_data_range(config, [a.images, b.images], names=("A", "B"))
    kernel = _mmd_kernel(args, config, a.images, b.images)
    start = time.perf_counter()
    if args.permutations:
        result = mmd_test(a.images, b.images, kernel, args.permutations, args.seed,
                          estimator=args.estimator, working_memory=args.working_memory)
        statistic, p_value = result.statistic, result.p_value
    else:
        statistic = mmd2(a.images, b.images, kernel, args.estimator,
                         working_memory=args.working_memory)
        p_value = None
    seconds = time.perf_counter() - start
    print(f"MMD^2 ({args.estimator} estimator, Gretton et al. 2012; the square, not MMD): "
          f"{statistic:.10g}")
    if p_value is None:
        print("p-value: not computed (--permutations 0)")
    else:
        print(f"p-value: {p_value:.6g} (permutation test, p = (1 + #{{T_b >= T}}) / (B + 1), "
              f"B = {args.permutations} relabellings of the pooled sample, seed {args.seed})")
    print(f"kernel: {kernel.describe()}")
    print(f"samples: A = {a.source} ({a.images.shape[0]} images "
          f"{'x'.join(map(str, a.images.shape[1:]))}), B = {b.source} "
          f"({b.images.shape[0]} images); {seconds:.2f} s")
    if args.json:
        save_json(args.json, {
            "what": f"MMD^2 ({args.estimator} estimator) and permutation p-value",
            "mmd2": statistic, "estimator": args.estimator, "p_value": p_value,
            "permutations": args.permutations, "seed": args.seed,
            "p_value_rule": "(1 + #{T_b >= T}) / (B + 1)", "kernel": kernel.describe(),
            "a": a.source, "b": b.source, "n": int(a.images.shape[0]),
            "m": int(b.images.shape[0]), "config": asdict(config), "ssimref": __version__,
            "seconds": round(seconds, 3)}, args.force)
    return 0


# ---------------------------------------------------------------------------- gmmn
_TRAIN_OPTIONS = (  # (flag, TrainConfig field, type, help)
    ("--dataset", "dataset", str, "training data (only 'digits': sklearn's 8x8 digits)"),
    ("--kernel", "kernel", str, "rbf: Li et al.'s RBF mixture; ssim: the paper's SSIM "
     "distance kernel (Eq. (2), power 1)"),
    ("--space", "space", str, "data: generate pixels; code: generate autoencoder codes"),
    ("--steps", "steps", int, "generator training steps (default 2000)"),
    ("--batch", "batch", int, "minibatch size, generated and data (default 100)"),
    ("--seed", "seed", int, "seed of all randomness of the run (default 0)"),
    ("--device", "device", str, "cpu (NumPy) or gpu (CuPy)"),
    ("--loss", "loss", str, "sqrt: sqrt(MMD^2) as Li et al. (default); mmd2: MMD^2"),
    ("--optimizer", "optimizer", str, "adam (default) or sgd (with momentum 0.9)"),
    ("--lr", "lr", float, "learning rate (default 1e-3)"),
    ("--ae-steps", "ae_steps", int, "autoencoder training steps in code space (1500)"),
    ("--log-every", "log_every", int, "steps between metric lines (10)"),
    ("--sample-every", "sample_every", int, "steps between sample grids (250)"),
    ("--checkpoint-every", "checkpoint_every", int, "steps between checkpoints (100)"),
)
_CHOICES = {"dataset": ("digits",), "kernel": ("rbf", "ssim"), "space": ("data", "code"),
            "device": ("cpu", "gpu"), "loss": ("sqrt", "mmd2"), "optimizer": ("adam", "sgd")}


def cmd_gmmn_train(args) -> int:
    from dataclasses import replace
    from .gmmn.train import TrainConfig, train

    given = {field: getattr(args, field) for _, field, _, _ in _TRAIN_OPTIONS
             if getattr(args, field) is not None}
    if args.conditional:
        given["conditional"] = True
    run_dir = Path(args.output)
    if args.resume:
        stored = run_dir / "config.json"
        if not stored.exists():
            raise FileNotFoundError(f"--resume: {run_dir} holds no config.json")
        import json
        saved = json.loads(stored.read_text())
        saved.pop("ssimref", None)
        config = replace(TrainConfig.from_dict(saved), **given)
    else:
        config = TrainConfig(**given)
    summary = train(run_dir, config, resume=args.resume, force=args.force,
                    progress=not args.no_progress)
    print(f"trained {run_dir} to step {summary['steps']} (final batch loss "
          f"{summary['loss'] if summary['loss'] is None else format(summary['loss'], '.4g')}, "
          f"{summary['seconds']:.1f} s of training); metrics in {run_dir / 'metrics.jsonl'}, "
          f"grids in {run_dir / 'samples'}")
    return 0


def cmd_gmmn_sample(args) -> int:
    from .backend import to_numpy
    from .generative.grid import save_grid
    from .gmmn.train import load_run

    run = load_run(args.run, device=args.device)
    gmmn = run.gmmn
    if args.n < 1:
        raise ValueError(f"-n must be >= 1, got {args.n}")
    if args.label is not None:
        if not gmmn.conditional:
            raise ValueError("--label needs a conditional model (trained with --conditional)")
        if not 0 <= args.label < gmmn.n_classes:
            raise ValueError(f"--label must be in 0..{gmmn.n_classes - 1}, got {args.label}")
        labels = np.full(args.n, args.label)
    elif gmmn.conditional:  # every label equally often, in order (rows of a 10x10 grid)
        labels = (np.arange(args.n) * gmmn.n_classes) // args.n
    else:
        labels = None
    seed = run.config.seed if args.seed is None else args.seed
    rng = np.random.default_rng([seed, 3])
    images = to_numpy(gmmn.sample_images(gmmn.prior(rng, args.n), run.xp, labels))
    output = Path(args.output)
    if output.suffix == ".npy":
        from .io import save_npy
        save_npy(output, images, force=args.force)
    elif output.suffix == ".png":
        save_grid(output, images, force=args.force)
    else:
        raise ValueError(f"output {output} must end in .png (a grid) or .npy (the images)")
    what = f" of label {args.label}" if args.label is not None else ""
    print(f"wrote {output}: {args.n} samples{what} from {args.run} (step "
          f"{run.meta['step']}, noise seed {seed})")
    return 0


def cmd_gmmn_evaluate(args) -> int:
    from .gmmn.evaluate import evaluate_run

    target = Path(args.run) / "evaluation.json"
    if target.exists() and not args.force:
        raise FileExistsError(f"{target} exists; pass --force to overwrite it")
    out = evaluate_run(args.run, n=args.n, parzen_samples=args.parzen_samples,
                       device=args.device, force=True)
    for key, value in out.items():
        print(f"{key:>16}: {value:.6g}" if isinstance(value, float) else
              f"{key:>16}: {value}")
    print(f"wrote {target}")
    return 0


def cmd_gmmn_experiment(args) -> int:
    from .gmmn.experiment import run_experiment

    seeds = tuple(range(args.seeds))
    if not seeds:
        raise ValueError(f"--seeds must be >= 1, got {args.seeds}")
    from .gmmn.train import TrainConfig
    results = run_experiment(args.output, seeds=seeds, steps=args.steps, batch=args.batch,
                             ae_steps=args.ae_steps, n_eval=args.n,
                             base=TrainConfig(lr=args.lr),
                             parzen_samples=args.parzen_samples,
                             progress=not args.no_progress, force=args.force)
    from .gmmn.experiment import format_table
    print(format_table(results))
    print(f"wall time {results['wall_seconds']:.0f} s ({results['runs_trained_in_this_call']} "
          f"of {len(results['runs'])} runs trained in this call, the others only evaluated); "
          f"wrote {args.output}/results.json, table.md, samples.png")
    return 0


def add_gmmn_parser(sub):
    gmmn = sub.add_parser("gmmn", help="generative moment-matching networks (RBF or SSIM "
                          "kernels, data or code space, conditional)")
    commands = gmmn.add_subparsers(dest="gmmn_command", required=True)

    p = commands.add_parser("train", help="train a GMMN (resumable)")
    for flag, field, kind, text in _TRAIN_OPTIONS:
        p.add_argument(flag, dest=field, type=kind, choices=_CHOICES.get(field), help=text)
    p.add_argument("--conditional", action="store_true",
                   help="condition on the digit label (CMMD, Ren et al. 2016)")
    p.add_argument("-o", "--output", required=True, help="run folder (runs/NAME)")
    p.add_argument("--resume", action="store_true", help="continue the run in the folder "
                   "from its last checkpoint (only --steps may change)")
    p.add_argument("--force", action="store_true", help="start afresh in a non-empty folder")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_gmmn_train)

    p = commands.add_parser("sample", help="draw samples from a trained run")
    p.add_argument("run", help="run folder")
    p.add_argument("-n", type=int, default=100, help="number of samples (default 100)")
    p.add_argument("-o", "--output", required=True, help="grid .png or images .npy")
    p.add_argument("--label", type=int, help="digit to generate (conditional models)")
    p.add_argument("--seed", type=int, help="noise seed (default: the run's seed)")
    p.add_argument("--device", choices=("cpu", "gpu"))
    p.add_argument("--force", action="store_true", help="overwrite the output")
    p.set_defaults(func=cmd_gmmn_sample)

    p = commands.add_parser("evaluate", help="metrics on the held-out digits")
    p.add_argument("run", help="run folder")
    p.add_argument("-n", type=int, default=500, help="samples for MMDs, memorisation and "
                   "classifier (default 500)")
    p.add_argument("--parzen-samples", type=int, default=2000, dest="parzen_samples",
                   help="samples for the Parzen density (default 2000)")
    p.add_argument("--device", choices=("cpu", "gpu"))
    p.add_argument("--force", action="store_true", help="overwrite evaluation.json")
    p.set_defaults(func=cmd_gmmn_evaluate)

    p = commands.add_parser("experiment", help="RBF vs SSIM kernels, data vs code space, "
                            "unconditional and conditional, several seeds")
    p.add_argument("-o", "--output", default="runs/experiment", help="experiment folder")
    p.add_argument("--seeds", type=int, default=3, help="seeds per condition (default 3)")
    p.add_argument("--steps", type=int, default=1000, help="generator steps per run "
                   "(default 1000: the whole experiment then takes about 18 minutes on a "
                   "2-core machine)")
    p.add_argument("--batch", type=int, default=64, help="minibatch size (default 64)")
    p.add_argument("--lr", type=float, default=3e-3, help="Adam learning rate of the "
                   "generators (default 3e-3)")
    p.add_argument("--ae-steps", type=int, default=1500, dest="ae_steps")
    p.add_argument("-n", type=int, default=500, help="evaluation samples")
    p.add_argument("--parzen-samples", type=int, default=2000, dest="parzen_samples")
    p.add_argument("--force", action="store_true", help="retrain runs that exist")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_gmmn_experiment)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ssimref", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"ssimref {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("distance", help="all-pairs SSIM distance matrix of an image set")
    add_image_arguments(p)
    p.add_argument("-o", "--output", required=True, help="output .npy file (a .json with "
                   "the conventions is written beside it)")
    p.add_argument("--kind", default="eq2", choices=KINDS)
    add_config_arguments(p)
    p.add_argument("--dtype", default="float64", choices=("float64", "float32"))
    add_compute_arguments(p)
    p.add_argument("--force", action="store_true", help="overwrite existing outputs")
    p.set_defaults(func=cmd_distance)

    p = sub.add_parser("verify", help="check another SSIM implementation against the oracle "
                       "and name the convention it differs in",
                       description="Run an SSIM implementation over ssimref's case corpus, "
                       "compare its mean SSIM with the loop-based oracle under a stated "
                       "convention, and fit the convention knobs to explain differences. "
                       "Exit code 0 when every case passes, 1 when some differ, 2 on errors "
                       "(unknown target, a library that does not import).")
    p.add_argument("target", nargs="?", default="skimage",
                   help="skimage, pytorch_msssim, piq, kornia, torchmetrics, or "
                   "module:function called as fn(x, y, data_range=L) on 2-D float64 arrays "
                   "and returning mean SSIM")
    p.add_argument("--convention", help="what the target should compute: a preset "
                   "(wang2004, ssim.m, skimage, skimage-gaussian, paper, pytorch_msssim, piq, "
                   "kornia, torchmetrics); default: the library's documented convention, "
                   "wang2004 for module:function")
    p.add_argument("--tolerance", type=float, default=1e-6,
                   help="absolute tolerance on mean SSIM (default 1e-6)")
    p.add_argument("--cases", help="comma-separated case names (default: all; see "
                   "--list-cases)")
    p.add_argument("--list-cases", action="store_true", help="list the case names and exit")
    p.add_argument("--hide-torchvision", action="store_true",
                   help="load piq/torchmetrics with a placeholder torchvision when the "
                   "installed one does not import (their SSIM does not use it)")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("kernel", help="SSIM kernel -1/2 H D^p H of an image set (and of "
                       "test images against it)")
    add_image_arguments(p)
    p.add_argument("-o", "--output", required=True, help="output .npy file for the n x n "
                   "training kernel (a .json with the conventions is written beside it)")
    p.add_argument("--test", help="test images (same forms as IMAGES and the same image "
                   "shape): writes their m x n kernel against IMAGES, centred with the "
                   "training statistics")
    p.add_argument("--output-test", "-o-test", dest="output_test",
                   help="output .npy file for the test kernel (with --test)")
    p.add_argument("--power", type=float, default=1.0,
                   help="p in D^p: 1 (default, the paper's SSIM kernel) or 2 (classical "
                   "MDS); any value in (0, 2] gives a PSD kernel")
    p.add_argument("--kind", default="eq2", choices=KINDS)
    add_config_arguments(p)
    p.add_argument("--plot", help="also draw the training kernel as a heatmap PNG "
                   "(needs matplotlib)")
    p.add_argument("--check-psd", action="store_true", dest="check_psd",
                   help="report the training kernel's extreme eigenvalues (O(n^3))")
    add_compute_arguments(p)
    p.add_argument("--force", action="store_true", help="overwrite existing outputs")
    p.set_defaults(func=cmd_kernel)

    p = sub.add_parser("demo", help="SSIM-kernel SVC on scikit-learn's digits: accuracy "
                       "tables, robustness to lighting changes, plots")
    p.add_argument("-o", "--output", default="ssimref-demo",
                   help="folder for results.json and the PNG plots (default: "
                   "./ssimref-demo)")
    p.add_argument("--seed", type=int, default=0, help="seed of folds, split and noise "
                   "(default 0)")
    p.add_argument("--limit", type=int, help="use a stratified subset of this many digits "
                   "(quick runs; default all 1797)")
    p.add_argument("--no-plots", action="store_true", dest="no_plots",
                   help="print the tables only")
    p.add_argument("--progress", action="store_true", help="show progress bars")
    p.add_argument("--force", action="store_true", help="write into an existing folder")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("mmd", help="MMD^2 between two image sets and a permutation p-value")
    add_image_arguments(p, "a", "first image set (as for 'distance': .npy/.npz, a folder, "
                        "or a data set such as 'digits' or 'mnist5k:test')")
    p.add_argument("b", help="second image set, same image shape")
    p.add_argument("--kernel", default="ssim", choices=MMD_KERNELS,
                   help="ssim: -1/2 D^power (the paper's kernel; MMD = half the energy "
                   "distance); ssim-rbf: exp(-gamma D^2), gamma = 1/(2 scale med^2); "
                   "mean-ssim: mean SSIM over windows; rbf: Gaussian mixture on the "
                   "flattened pixels, variances scale * med^2 (default ssim)")
    p.add_argument("--kind", default="eq2", choices=KINDS, help="SSIM distance (default eq2)")
    p.add_argument("--power", type=int, default=1, choices=(1, 2),
                   help="power of D for --kernel ssim (default 1)")
    p.add_argument("--scales", type=float, nargs="+", default=[1.0],
                   help="median-heuristic scales: rbf variances scale * med^2 (one per "
                   "component), ssim-rbf uses the first (default 1)")
    p.add_argument("--estimator", default="unbiased", choices=("unbiased", "biased", "linear"),
                   help="MMD^2 estimator (default unbiased)")
    p.add_argument("--permutations", type=int, default=1000,
                   help="random relabellings for the p-value; 0 skips the test (default 1000)")
    p.add_argument("--seed", type=int, default=None, help="seed of the relabellings")
    add_config_arguments(p)
    add_compute_arguments(p, backend=False, progress=False)
    p.add_argument("--json", help="also write the result and its conventions to this .json")
    p.add_argument("--force", action="store_true", help="overwrite an existing --json file")
    p.set_defaults(func=cmd_mmd)
    add_gmmn_parser(sub)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, TypeError, OSError, ImportError) as exc:
        print(f"ssimref: error: {exc}", file=sys.stderr)
        return 2
    except TrainingInterrupted as exc:
        print(f"ssimref: {exc}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("ssimref: interrupted; files are replaced atomically, so each output is "
              "complete or absent (a training run resumes from its last checkpoint with "
              "--resume)", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
