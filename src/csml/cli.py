"""The ``csml`` command: subcommands are Hydra apps, so every option is a config override.

``csml train experiment=intent_banking77 trainer.max_epochs=1``. Heavy libraries are imported only
once a subcommand runs, so ``csml --help`` and ``csml train --help`` answer at once.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import NamedTuple

from csml.registry import Registry, UnknownNameError, resolve


class Command(NamedTuple):
    """A subcommand: the function it runs (``"module:function"``, imported only when it runs), the Hydra
    config it composes and its line in ``csml --help``."""

    target: str
    config_name: str
    help: str


COMMANDS: Registry[Command] = Registry("commands", "command", base=Command, plugins=False)
"""The subcommands of ``csml``, in the order ``csml --help`` lists them."""
COMMANDS.register(
    "train",
    Command("csml.train:train", "train", "fine-tune an intent or sentiment classifier and register it"),
)
COMMANDS.register(
    "eval",
    Command("csml.eval_model:eval_model", "eval", "score a registered model or checkpoint on a dataset"),
)
COMMANDS.register(
    "promote",
    Command("csml.promote:promote_command", "promote", "gate a version and move the champion alias"),
)
COMMANDS.register(
    "serve", Command("csml.bot.server:serve", "serve", "serve the reference customer-service bot over HTTP")
)
COMMANDS.register(
    "audit",
    Command("csml.audit.run:audit_command", "audit", "audit a deployed chatbot and write a scorecard"),
)
COMMANDS.register(
    "audit init",
    Command(
        "csml.audit.init:audit_init_command",
        "audit_init",
        "write a starter audit suite from a knowledge base (templates, by seed)",
    ),
)
COMMANDS.register(
    "audit compare",
    Command(
        "csml.audit.compare:compare_command",
        "audit_compare",
        "compare two audits of one suite: paired tests, flipped verdicts, exit 1 on a gated regression",
    ),
)
COMMANDS.register(
    "calibrate-judge",
    Command(
        "csml.judge.calibrate_command:calibrate_judge_command",
        "calibrate_judge",
        "choose the groundedness judge's threshold on your own labelled replies",
    ),
)
COMMANDS.register(
    "sweep",
    Command(
        "csml.sweep.run:sweep_command", "train", "tune `csml train` with an Optuna study (hparams_search=)"
    ),
)
COMMANDS.register(
    "train-response",
    Command(
        "csml.response.train:train_response",
        "train_response",
        "fine-tune a response model (retrieval bi-encoder or LoRA generator)",
    ),
)

COMMAND_ENV = "CSML_COMMAND"

USAGE = """usage: csml <command> [hydra overrides...]

commands:
{commands}

Each command is a Hydra app: `csml <command> --help` lists its config groups and options,
`csml <command> --cfg job` prints the composed config, `--multirun` sweeps over comma lists.
"""


def _usage() -> str:
    width = max(map(len, COMMANDS))
    lines = "\n".join(f"  {name:<{width}}  {command.help}" for name, command in COMMANDS.items())
    return USAGE.format(commands=lines)


def run_command(name: str, argv: list[str]) -> None:
    """Runs subcommand ``name`` as a Hydra app over ``argv`` (overrides and Hydra flags)."""
    import hydra
    from omegaconf import DictConfig

    from csml.config import config_dir, register_resolvers
    from csml.data.splits import DataValidationError

    target, config_name, _ = COMMANDS[name]
    register_resolvers()
    _check_experiments(name, argv)
    if not any(arg.startswith("-") for arg in argv):
        _check_overrides(config_name, argv)

    @hydra.main(config_path=str(config_dir()), config_name=config_name, version_base="1.3")
    def app(cfg: DictConfig) -> None:
        try:
            resolve(target)(cfg)
        except (DataValidationError, FileNotFoundError) as error:
            logging.getLogger("csml").error("%s", error)
            sys.exit(2)

    # Lightning's DDP launcher re-runs `sys.argv` once per extra device; the command name travels in
    # CSML_COMMAND because Hydra must see only overrides in argv.
    os.environ[COMMAND_ENV] = name
    sys.argv = [sys.argv[0], *argv]
    app()


def _check_experiments(name: str, argv: list[str]) -> None:
    """Exits 2 naming the right command when an ``experiment=`` of ``argv`` is for another command.

    Each experiment declares the command it is for (``command: train-response``); commands that share a
    config share its experiments (``csml sweep`` tunes ``csml train`` experiments).
    """
    from csml.config import experiment_command

    for arg in argv:
        key, _, value = arg.partition("=")
        if key.lstrip("+~") != "experiment":
            continue
        for choice in value.split(","):  # a --multirun sweep lists several
            wanted = experiment_command(choice)
            if wanted is None or (
                wanted in COMMANDS and COMMANDS[wanted].config_name == COMMANDS[name].config_name
            ):
                continue
            if wanted in COMMANDS:
                error = f"is for `csml {wanted}`, not `csml {name}`: run `csml {wanted} experiment={choice}`"
            else:
                error = f"declares `command: {wanted}`, which is none of {', '.join(COMMANDS)}"
            print(f"csml: config error: experiment={choice} {error}", file=sys.stderr)
            sys.exit(2)


def _check_overrides(config_name: str, overrides: list[str]) -> None:
    """Exits 2 with Hydra's message when the overrides do not compose (a typo, an unknown option).

    Exit code 1 stays reserved for a command's own verdict (a refused promotion, a failed audit gate).
    """
    from hydra.errors import HydraException

    from csml.config import compose

    try:
        compose(config_name, overrides)
    except HydraException as error:
        print(f"csml: config error: {error}", file=sys.stderr)
        sys.exit(2)


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if os.environ.get(COMMAND_ENV) in COMMANDS and argv and "=" in argv[0]:
        argv = [os.environ[COMMAND_ENV], *argv]  # a process Lightning started for another device
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return
    if argv[0] in ("-V", "--version"):
        from csml import __version__

        print(f"csml {__version__}")
        return
    name, rest = argv[0], argv[1:]
    if rest and f"{name} {rest[0]}" in COMMANDS:  # two-word commands: `csml audit init`
        name, rest = f"{name} {rest[0]}", rest[1:]
    try:
        COMMANDS[name]
    except UnknownNameError as error:
        print(f"csml: {error}\n\n{_usage()}", file=sys.stderr)
        sys.exit(2)
    run_command(name, rest)


if __name__ == "__main__":
    main()
