"""An engine for the relay's own tests: each signal appended to the file $RECORDING_ENGINE_FILE."""

import json
import os


class RecordingHandler:
    def __init__(self, path: str, fail: int = 0):
        self.path = path
        self.fail = fail  # refuse this many signals first, as an engine that is away would

    def signal(self, target, approval) -> None:
        if self.fail:
            self.fail -= 1
            raise ConnectionError("engine away")
        with open(self.path, "a") as file:
            file.write(json.dumps({"target": target, "approval": approval["id"]}) + "\n")

    def signals(self) -> list[dict]:
        if not os.path.exists(self.path):
            return []
        with open(self.path) as file:
            return [json.loads(line) for line in file]


def recording_handler() -> RecordingHandler:
    """The factory `gatekeeper-relay --engine rec=...:recording_handler` calls."""
    return RecordingHandler(os.environ["RECORDING_ENGINE_FILE"])
