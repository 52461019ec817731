"""A real Jupyter kernel driven through jupyter_client, as a frontend would drive it.

Every iopub message is collected with its arrival time, so tests can ask what a
frontend would have seen and when; a click on a widget button is a real
``comm_msg`` on the shell channel.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import start_new_kernel

Message = dict[str, Any]

# The newest ipykernel 7.x runs in this environment as "python3"; CI adds the newest
# 6.x in its own environment under this kernelspec name (see .ci/run).
IPYKERNEL6 = "ipyllm-ipykernel6"


def kernel_names() -> list[str]:
    names = ["python3"]
    if IPYKERNEL6 in KernelSpecManager().find_kernel_specs():
        names.append(IPYKERNEL6)
    elif os.environ.get("CI"):
        raise RuntimeError(f"CI must provide the {IPYKERNEL6} kernelspec (.ci/run installs it)")
    return names


class Kernel:
    def __init__(self, name: str, env: dict[str, str]) -> None:
        kernel_env = {**os.environ, **env}
        self.manager, self.client = start_new_kernel(kernel_name=name, env=kernel_env)
        self.messages: list[tuple[float, Message]] = []
        self._lock = threading.Condition()
        self._running = True
        self._reader = threading.Thread(target=self._read_iopub, daemon=True)
        self._reader.start()

    def _read_iopub(self) -> None:
        while self._running:
            try:
                message = self.client.get_iopub_msg(timeout=0.1)
            except queue.Empty:
                continue
            except Exception:  # the channel closed at shutdown
                return
            with self._lock:
                self.messages.append((time.monotonic(), message))
                self._lock.notify_all()

    def close(self) -> None:
        self._running = False
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=True)

    # -- running code ------------------------------------------------------------------
    def execute(
        self, code: str, *, cell_id: str | None = None, timeout: float = 30
    ) -> tuple[Message, float]:
        """Run code; return the execute reply and the time it arrived."""
        metadata = {"cellId": cell_id} if cell_id else {}
        request = self.client.session.msg(
            "execute_request",
            {
                "code": code,
                "silent": False,
                "store_history": True,
                "user_expressions": {},
                "allow_stdin": False,
                "stop_on_error": False,  # independent requests, not a run of cells
            },
            metadata=metadata,
        )
        self.client.shell_channel.send(request)
        msg_id = request["header"]["msg_id"]
        deadline = time.monotonic() + timeout
        while True:
            reply = self.client.get_shell_msg(timeout=max(0.1, deadline - time.monotonic()))
            if reply["parent_header"].get("msg_id") == msg_id:
                return reply, time.monotonic()

    def run(self, code: str, **kwargs: Any) -> Message:
        """Run code that must succeed; return its reply."""
        reply, _ = self.execute(code, **kwargs)
        content = reply["content"]
        assert content["status"] == "ok", f"{content.get('ename')}: {content.get('evalue')}"
        return reply

    def evaluate(self, expression: str) -> str:
        """The text/plain repr of an expression, evaluated in the kernel."""
        reply, _ = self.execute(f"__ipyllm_test_value = ({expression})")
        assert reply["content"]["status"] == "ok", reply["content"]
        request = self.client.execute(
            "", user_expressions={"value": "__ipyllm_test_value"}, silent=True
        )
        while True:
            reply = self.client.get_shell_msg(timeout=10)
            if reply["parent_header"].get("msg_id") == request:
                value = reply["content"]["user_expressions"]["value"]
                assert value["status"] == "ok", value
                return value["data"]["text/plain"]

    # -- what a frontend sees -----------------------------------------------------------
    def wait_for(self, predicate: Callable[[Message], bool], timeout: float = 20) -> Message:
        deadline = time.monotonic() + timeout
        checked = 0
        with self._lock:
            while True:
                for _, message in self.messages[checked:]:
                    if predicate(message):
                        return message
                checked = len(self.messages)
                remaining = deadline - time.monotonic()
                assert remaining > 0, "timed out waiting for a kernel message"
                self._lock.wait(remaining)

    def outputs_of(self, reply: Message, kind: str) -> list[Message]:
        """The iopub messages of one kind that a request produced while it ran."""
        parent = reply["parent_header"]["msg_id"]
        # iopub and shell are separate sockets: the idle status marks the end of the outputs.
        self.wait_for(
            lambda m: (
                m["msg_type"] == "status"
                and m["content"]["execution_state"] == "idle"
                and m["parent_header"].get("msg_id") == parent
            )
        )
        with self._lock:
            return [
                m
                for _, m in self.messages
                if m["msg_type"] == kind and m["parent_header"].get("msg_id") == parent
            ]

    def display_ids(self, reply: Message) -> list[str]:
        """One display id per answer the request showed: its live view's."""
        return [
            m["content"]["transient"]["display_id"]
            for m in self.outputs_of(reply, "display_data")
            if m["content"].get("transient", {}).get("display_id")
            and not m["content"]["transient"]["display_id"].startswith("ipyllm-static-")
        ]

    def final_display(self, display_id: str, timeout: float = 30) -> Message:
        """The static copy an answer leaves when it ends: its fallback output (kept
        current while it streams) or, in headless runs, what replaces the live view."""
        answer = display_id.removeprefix("ipyllm-live-")
        targets = {display_id, f"ipyllm-static-{answer}"}
        return self.wait_for(
            lambda m: (
                m["msg_type"] == "update_display_data"
                and m["content"].get("transient", {}).get("display_id") in targets
                and m["content"]["metadata"].get("ipyllm", {}).get("status")
                in ("done", "stopped", "error")
            ),
            timeout,
        )

    def comm_opens(self) -> Iterator[Message]:
        with self._lock:
            snapshot = [m for _, m in self.messages if m["msg_type"] == "comm_open"]
        yield from snapshot

    def stop_buttons(self) -> list[str]:
        """Comm ids of the Stop buttons created so far, oldest first."""
        return [
            m["content"]["comm_id"]
            for m in self.comm_opens()
            if m["content"]["data"].get("state", {}).get("_model_name") == "ButtonModel"
            and m["content"]["data"]["state"].get("description") == "Stop"
        ]

    def click(self, comm_id: str) -> None:
        """What a browser sends when the button is clicked."""
        message = self.client.session.msg(
            "comm_msg",
            {"comm_id": comm_id, "data": {"method": "custom", "content": {"event": "click"}}},
        )
        self.client.shell_channel.send(message)

    def widget_texts(self) -> str:
        """Every HTML value the kernel has sent to widgets so far, joined."""
        with self._lock:
            snapshot = [m for _, m in self.messages]
        values = []
        for message in snapshot:
            data = message["content"].get("data", {}) if "comm" in message["msg_type"] else {}
            state = data.get("state", {})
            if isinstance(state.get("value"), str):
                values.append(state["value"])
        return "\n".join(values)


@contextmanager
def running_kernel(name: str = "python3", **env: str) -> Iterator[Kernel]:
    kernel = Kernel(name, env)
    try:
        kernel.run("%load_ext ipyllm")
        yield kernel
    finally:
        kernel.close()
