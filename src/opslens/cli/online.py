"""``opslens stream``: one JSON line out per JSON line in, from the latest run's model or the registry.

Example:
    >>> from opslens.cli.online import _plots_said
    >>> _plots_said(None)
    'no plots'
"""

import logging
import sys
from pathlib import Path
from typing import Annotated, Literal

import typer

from opslens.cli.common import ProjectOpt, check_writable, load
from opslens.explain.text import plural

__all__ = ["stream"]

log = logging.getLogger("opslens.cli")


def _plots_said(folder: Path | None) -> str:
    return f"plots in {folder}" if folder is not None else "no plots"


def stream(
    ctx: typer.Context,
    analysis: Annotated[str, typer.Argument(help="analysis name")],
    project: ProjectOpt = Path("project.yaml"),
    input: Annotated[
        str, typer.Option("--input", "-i", help="JSON-lines file of instances, or - for stdin")
    ] = "-",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="write JSON lines here (default stdout)")
    ] = None,
    plots: Annotated[
        bool, typer.Option("--plots/--no-plots", help="save a plot per instance")
    ] = True,
    plots_dir: Annotated[Path | None, typer.Option("--plots-dir", help="where plots go")] = None,
    source: Annotated[
        str,
        typer.Option(
            "--from",
            help="latest: the latest run's model; registry: the MLflow alias 'champion' (followed)",
        ),
    ] = "latest",
    mqtt_topic: Annotated[
        str | None,
        typer.Option("--mqtt-topic", help="read samples from this MQTT topic instead of --input"),
    ] = None,
    result_topic: Annotated[
        str | None,
        typer.Option("--result-topic", help="MQTT topic for answers (opslens/<analysis>/levels)"),
    ] = None,
    mqtt_host: Annotated[str, typer.Option("--mqtt-host", help="MQTT broker host")] = "127.0.0.1",
    mqtt_port: Annotated[int, typer.Option("--mqtt-port", help="MQTT broker port")] = 1883,
    max_messages: Annotated[
        int | None, typer.Option("--max-messages", help="MQTT: stop after this many messages")
    ] = None,
) -> None:
    """Predict each streamed instance; one JSON line out per line in (or per MQTT message)."""
    from opslens.errors import ConfigError
    from opslens.online.stream import stream_instances

    if source not in ("latest", "registry"):
        raise ConfigError(
            f"--from {source!r} is not a model source", fix="use --from latest or --from registry"
        )
    chosen: Literal["latest", "registry"] = "registry" if source == "registry" else "latest"
    config = load(ctx, project)
    check_writable(output, "--output")
    check_writable(plots_dir, "--plots-dir", folder=True)
    if mqtt_topic is not None:
        from opslens.online.mqtt import MqttSettings, stream_mqtt

        settings = MqttSettings(
            topic=mqtt_topic,
            analysis=analysis,
            result_topic=result_topic,
            host=mqtt_host,
            port=mqtt_port,
        )
        got = stream_mqtt(config, settings, model_source=chosen, max_messages=max_messages)
        log.info(
            "%s received: %s scored, %s rejected, %s dropped as duplicates, %s late; %s",
            plural(got.received, "message"),
            got.scored,
            got.rejected,
            got.duplicates,
            got.out_of_order,
            f"answers on {settings.results}",
        )
        return
    summary = stream_instances(
        config,
        analysis,
        input_path=None if input == "-" else Path(input),
        stdin=sys.stdin if input == "-" else None,
        output=output,
        plots=plots,
        plots_dir=plots_dir,
        model_source=chosen,
    )
    log.info(
        "%s scored, %s rejected; %s",
        plural(summary.scored, "instance"),
        plural(summary.rejected, "instance"),
        _plots_said(summary.plots_dir),
    )
