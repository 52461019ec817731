"""A live view is bounded by default (answers streaming above a reader do not move the page);
the static copy, saved with the notebook and exported, is not."""

from __future__ import annotations

import ipyllm
from ipyllm import ChatView

from .widgets import Frontend

FAST_DEMO = "http://demo.ipyllm.invalid/with/rate=0,latency=0/v1"


def scroller_layout(view: ChatView) -> tuple[str | None, str | None, str | None]:
    (scroller,) = [w for w in view.children if "ipyllm-body" in getattr(w, "_dom_classes", ())]
    layout = scroller.layout
    return layout.max_height, layout.overflow, layout.flex_flow


async def test_a_live_view_is_bounded_and_follows_its_end_its_static_copy_is_not(
    frontend: Frontend,
) -> None:
    view = ChatView()
    assert scroller_layout(view) == ("40em", "auto", "column-reverse")
    transcript = await view.stream(ipyllm.stream("Hi", provider="demo", base_url=FAST_DEMO))
    assert transcript.status == "done"
    data, _ = view.static_copy()
    assert 'style="max-height' not in data["text/html"]  # the saved answer reads whole
    # A limit that was asked for is kept, in both.
    limited = ChatView(max_height="12em")
    assert scroller_layout(limited)[0] == "12em"
    assert 'style="max-height: 12em' in limited.static_copy()[0]["text/html"]
