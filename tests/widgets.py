"""What a frontend would hold of the widgets a test creates, rebuilt from their messages.

ipywidgets sends through ``comm.create_comm``, which is meant to be replaced:
:func:`recording` replaces it with comms that record every message they would
publish, and rebuilds from them what a frontend's widget manager holds: one model
per comm id, its state from ``comm_open`` then each ``update``, gone at
``comm_close``. A model's children are ``"IPY_MODEL_<id>"`` references and its CSS
classes are ``_dom_classes``, so tests find a view's parts by class from its
``model_id``, read what was sent, and click a button by delivering the message a
browser would send to its comm; they never look at a view's attributes.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest.mock import patch

import comm
import ipywidgets
from comm.base_comm import BaseComm

Sent = tuple[float, str, str, dict[str, Any]]  # (monotonic time, msg_type, comm_id, data)
REFERENCE = "IPY_MODEL_"


class Frontend:
    """Every widget message sent while recording, and the models they describe."""

    def __init__(self) -> None:
        self.log: list[Sent] = []
        self.models: dict[str, dict[str, Any]] = {}  # comm id -> latest state, open models only
        self.comms: dict[str, BaseComm] = {}  # the kernel side of each open comm

    def received(self, kind: str, comm_id: str, data: dict[str, Any]) -> None:
        self.log.append((time.monotonic(), kind, comm_id, data))
        if kind == "comm_open":
            self.models[comm_id] = dict(data.get("state", {}))
        elif kind == "comm_msg" and data.get("method") == "update" and comm_id in self.models:
            self.models[comm_id].update(data.get("state", {}))
        elif kind == "comm_close":
            self.models.pop(comm_id, None)
            self.comms.pop(comm_id, None)

    # -- reading the models --------------------------------------------------------------
    def state(self, model: str | ipywidgets.Widget) -> dict[str, Any]:
        """The latest state of a model: a widget, a model id or an ``IPY_MODEL_`` reference."""
        return self.models[_model_id(model)]

    def layout(self, model: str | ipywidgets.Widget) -> dict[str, Any]:
        """The latest state of a model's layout model."""
        return self.state(self.state(model)["layout"])

    def find(self, root: str | ipywidgets.Widget, css_class: str) -> list[str]:
        """Ids of the models under ``root`` (itself included) with this class, in page order."""
        found: list[str] = []

        def walk(model_id: str) -> None:
            state = self.models[model_id]
            if css_class in state.get("_dom_classes", ()):
                found.append(model_id)
            for child in state.get("children", ()):
                walk(_model_id(child))

        walk(_model_id(root))
        return found

    def one(self, root: str | ipywidgets.Widget, css_class: str) -> str:
        """The id of the only model under ``root`` with this class."""
        found = self.find(root, css_class)
        assert len(found) == 1, f"{len(found)} models with class {css_class!r}"
        return found[0]

    def value(self, root: str | ipywidgets.Widget, css_class: str) -> str:
        """The latest value of the only model under ``root`` with this class."""
        return str(self.state(self.one(root, css_class))["value"])

    def joined(self, root: str | ipywidgets.Widget, css_class: str) -> str:
        """The latest values of all models under ``root`` with this class, joined in order."""
        return "".join(str(self.state(m)["value"]) for m in self.find(root, css_class))

    def shown_body(self, view: ipywidgets.Widget) -> str:
        """The body HTML a frontend shows: the frozen segments in order, then the live tail."""
        blocks = self.one(view, "ipyllm-blocks")
        return self.joined(blocks, "ipyllm-blocks-segment") + self.value(view, "ipyllm-tail")

    def body_values_sent(self, view: ipywidgets.Widget) -> list[str]:
        """Every value any body widget of ``view`` (its segments, its live tail) was sent,
        in its opening state or an update: all the answer HTML a frontend ever received."""
        body_widgets = set(self.find(view, "ipyllm-blocks-segment"))
        body_widgets.add(self.one(view, "ipyllm-tail"))
        values = [data.get("state", {}).get("value") for _, _, sender, data in self.log
                  if sender in body_widgets]  # fmt: skip
        return [value for value in values if isinstance(value, str)]

    def values_sent(self, model: str | ipywidgets.Widget) -> list[tuple[float, str]]:
        """(time, value) of every update of a model's value after it opened, in order."""
        comm_id = _model_id(model)
        return [
            (at, data["state"]["value"])
            for at, kind, sender, data in self.log
            if kind == "comm_msg" and sender == comm_id and "value" in data.get("state", {})
        ]

    # -- sending from the frontend -----------------------------------------------------
    def click(self, model: str | ipywidgets.Widget) -> None:
        """What a browser sends to a button's comm when it is clicked."""
        data = {"method": "custom", "content": {"event": "click"}}
        self.comms[_model_id(model)].handle_msg({"content": {"data": data}, "buffers": []})


def _model_id(model: str | ipywidgets.Widget) -> str:
    if isinstance(model, ipywidgets.Widget):
        return str(model.model_id)
    return model.removeprefix(REFERENCE)


class _RecordingComm(BaseComm):
    frontend: Frontend

    def publish_msg(self, msg_type: str, data: Any = None, metadata: Any = None,
                    buffers: Any = None, **keys: Any) -> None:  # fmt: skip
        self.frontend.received(msg_type, self.comm_id, data or {})


@contextmanager
def recording() -> Iterator[Frontend]:
    """Record every widget message sent inside the block (one recording at a time)."""
    frontend = Frontend()

    def create_comm(**kwargs: Any) -> _RecordingComm:
        recording = _RecordingComm.__new__(_RecordingComm)
        recording.frontend = frontend  # set first: opening the comm publishes comm_open
        _RecordingComm.__init__(recording, **kwargs)
        frontend.comms[recording.comm_id] = recording
        return recording

    with patch.object(comm, "create_comm", create_comm):
        yield frontend
