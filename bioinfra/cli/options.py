"""Options several commands share, declared once. A pipeline's own options are not here: they come
from its pipeline.yaml (run_cmd.input_option, used by `run` and `render`)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

Target = Annotated[Optional[str], typer.Option("--target", "-t", help="local | onprem | gcp | aws (default: the config's).")]
