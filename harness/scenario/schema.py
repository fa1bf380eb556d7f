"""Publish the scenario format as JSON Schema, so editors can complete and check files."""

from __future__ import annotations

import json
from pathlib import Path

from harness.scenario.model import Scenario
from harness.store.atomic import write_text_atomically

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "scenarios" / "scenario.schema.json"


def scenario_schema() -> dict[str, object]:
    schema = Scenario.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "hftchaos scenario"
    return schema


def write_schema(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomically(path, json.dumps(scenario_schema(), indent=2, sort_keys=True) + "\n")
