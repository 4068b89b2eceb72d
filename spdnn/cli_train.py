"""``spdnn train`` and ``spdnn eval`` (hooked into :mod:`spdnn.cli`).

Only argparse is imported here; torch comes with the command's work.
"""

from __future__ import annotations

import argparse
import json
import os
import textwrap

from spdnn import cli_args

__all__ = ["add_train_parsers", "cmd_eval", "cmd_train"]



def add_train_parsers(sub, common: argparse.ArgumentParser) -> None:
    """Add the ``train`` and ``eval`` subcommands to ``sub``."""
    from spdnn.system.supervised import SUPERVISED_LOSSES

    t = sub.add_parser(
        "train", parents=[common], formatter_class=cli_args.FORMAT,
        help="train a network (supervised) or a system of networks",
        description=textwrap.dedent("""\
            Train SPEC (one network on inputs and targets y) or SYSTEM (a system spec with networks:,
            its losses, optimisers and update order; docs/training.md) on an .npz data file. RUN_DIR
            gets last.pt (checkpoint), best.pt, metrics.jsonl, metrics.csv, loss.png and, at the
            end, <network>.pt and <network>.onnx with the best epoch's weights. Ctrl-C saves
            last.pt and exits 130; --resume continues to the result of an uninterrupted run.
            Under torchrun --nproc-per-node N the same command trains data-parallel."""),
        epilog=cli_args.examples(
            "spdnn train examples/06_train_system/classifier.yaml --data train.npz -o runs/clf",
            "spdnn train examples/06_train_system/gan_aux.yaml --data vectors.npz -o runs/gan --epochs 20",
            "spdnn train model.yaml --data d.npz -o runs/m --resume        # after Ctrl-C",
            "torchrun --nproc-per-node 2 -m spdnn train model.yaml --data d.npz -o runs/ddp"))
    t.add_argument("spec", metavar="SPEC_OR_SYSTEM", help="a network spec (.yaml or .onnx), a system spec, or a shipped name (spdnn list)")
    t.add_argument("--data", required=True, metavar="FILE.npz", help="training data (arrays by name; docs/training.md)")
    t.add_argument("-o", "--output", metavar="RUN_DIR", help="run folder (default runs/<name>)")
    v = t.add_mutually_exclusive_group()
    v.add_argument("--val", metavar="FILE.npz", help="validation data in a file of its own")
    v.add_argument("--val-fraction", type=cli_args.fraction, default=0.1, metavar="F",
                   help="hold out this fraction of --data for validation (default 0.1; 0: none)")
    t.add_argument("--epochs", type=cli_args.positive_int, help="epochs (default: the system's, else 10)")
    t.add_argument("--batch-size", type=cli_args.positive_int, help="global batch size (default: the system's, else 32)")
    t.add_argument("--patience", type=cli_args.non_negative_int, default=None, metavar="N",
                   help="stop after N epochs without a better validation loss (default: off)")
    t.add_argument("--seed", type=cli_args.seed, default=0, help="seed of weights, split, shuffling and noise (default 0)")
    t.add_argument("--device", default="auto", help="auto (CUDA when torch sees it), cpu or cuda")
    t.add_argument("--amp", action="store_true", help="bfloat16 mixed precision (CUDA only)")
    t.add_argument("--resume", action="store_true", help="continue the run in RUN_DIR from its last.pt")
    s = t.add_argument_group("single network (a system spec sets these per optimizer)")
    s.add_argument("--loss", choices=SUPERVISED_LOSSES, default="auto",
                   help="auto: cross_entropy after a softmax, bce after a sigmoid, else mse")
    s.add_argument("--optimizer", choices=["adam", "sgd", "rmsprop"], default="adam")
    s.add_argument("--lr", type=cli_args.positive_float, default=1e-3, help="learning rate (default 1e-3)")
    s.add_argument("--momentum", type=cli_args.non_negative_float, default=0.0, help="SGD/RMSprop momentum (default 0)")
    s.add_argument("--nesterov", action="store_true", help="Nesterov momentum (SGD)")

    e = sub.add_parser(
        "eval", parents=[common], formatter_class=cli_args.FORMAT,
        help="metrics of a trained network on an .npz file",
        description=textwrap.dedent("""\
            Run MODEL (an .onnx written by spdnn train, or a spec with --weights) on the inputs of
            an .npz file and compare with its targets y: accuracy and per-class accuracy
            (classification); for segmentation also sensitivity, specificity, precision, NPV, F1,
            MCC, informedness and markedness (thesis App. D); MSE, PSNR and SSIM (regression)."""),
        epilog=cli_args.examples("spdnn eval runs/clf/classifier.onnx --data test.npz",
                         "spdnn eval classifier.yaml --weights runs/clf/best.pt --data test.npz --json",
                         "spdnn eval runs/ae/ae.onnx --data test.npz --task regression --data-range 2"))
    e.add_argument("model", metavar="MODEL", help="an .onnx model, or a YAML spec with --weights")
    e.add_argument("--data", required=True, metavar="FILE.npz", help="inputs and targets y")
    e.add_argument("--weights", metavar="FILE.pt", help="weights for a YAML spec (<name>.pt or best.pt)")
    e.add_argument("--task", choices=["auto", "classification", "segmentation", "regression"], default="auto")
    e.add_argument("--batch-size", type=cli_args.positive_int, default=64)
    e.add_argument("--data-range", type=cli_args.positive_float, default=1.0, help="PSNR/SSIM data range (default 1)")
    e.add_argument("--json", action="store_true", help="print the metrics as JSON")


def load_trainable(path: str, args: argparse.Namespace):
    """A system spec as is, or a network wrapped as a one-network supervised system."""
    from spdnn.errors import SpdnnError
    from spdnn.frontends.yaml_importer.loader import load_yaml, read_spec_file
    from spdnn.frontends.yaml_importer.system import is_system_document, load_system
    from spdnn.system.supervised import supervised_system

    single = {"--loss": args.loss != "auto", "--optimizer": args.optimizer != "adam", "--lr": args.lr != 1e-3,
              "--momentum": args.momentum != 0.0, "--nesterov": args.nesterov}
    if not str(path).lower().endswith(".onnx"):
        text, name = read_spec_file(path)
        if is_system_document(load_yaml(text, name).data):
            given = [flag for flag, on in single.items() if on]
            if given:
                raise SpdnnError(f"{', '.join(given)}: for a single network; system {path} sets its losses and "
                                 "optimizers in the spec")
            spec = load_system(path)
            t = spec.training
            t.epochs = args.epochs or t.epochs
            t.batch_size = args.batch_size or t.batch_size
            t.patience = t.patience if args.patience is None else args.patience
            return spec
    from spdnn.compile import load_input

    return supervised_system(load_input(path), args.loss, args.optimizer, args.lr, args.momentum, args.nesterov,
                             args.epochs or 10, args.batch_size or 32, args.patience or 0)


def cmd_train(args: argparse.Namespace, console) -> int:
    from spdnn.backends.torch_exporter.training.loop import Trainer, TrainOptions

    spec = load_trainable(args.spec, args)
    out = args.output or os.path.join("runs", spec.name)
    options = TrainOptions(data=args.data, out_dir=out, val=args.val, val_fraction=args.val_fraction,
                           seed=args.seed, device=args.device, resume=args.resume, amp=args.amp,
                           progress=not console.quiet)
    trainer = Trainer(spec, options, say=console.say)
    result = trainer.run()
    best = result["best"]
    console.say(f"trained {spec.name} for {result['epochs']} epochs on {trainer.device}"
                + (f"; best {spec.training.monitor} {best:.4g} at epoch {result['best_epoch']}" if best is not None
                   else "") + f"; wrote {out}")
    return 0


def cmd_eval(args: argparse.Namespace, console) -> int:
    from spdnn.backends.torch_exporter.training.evaluate import evaluate

    result = evaluate(args.model, args.data, args.weights, args.task, args.batch_size, args.data_range)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    console.say(f"{result['task']} on {result['samples']} samples")
    for key, value in result.items():
        if key in ("task", "samples"):
            continue
        if isinstance(value, dict):
            shown = ", ".join(f"{k}: {_num(v)}" for k, v in value.items())
            console.say(f"  {key}: {shown}")
        else:
            console.say(f"  {key}: {_num(value)}")
    return 0


def _num(value) -> str:
    return "n/a" if value is None else (f"{value:.4f}" if isinstance(value, float) else str(value))
