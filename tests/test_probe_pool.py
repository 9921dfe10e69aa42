"""Probes in worker processes: a template or a refusal crosses back whole, and a probe past
its time limit is refused as busy (never taken up) or too slow (taken up, not finished)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from matcher import (
    EncoderConfig,
    FaceRefusal,
    Matcher,
    PipelineBusy,
    PipelineTimeout,
    ProbeEncoder,
    load_engine,
)
from tests.support.data import sample
from tests.support.images import slow_photo


def test_templates_and_refusals_cross_from_the_workers_whole() -> None:
    probes = ProbeEncoder(EncoderConfig("sface"), workers=1, timeout_s=60)
    try:
        template = probes.encode(sample("obama.jpg"), None)
        local = Matcher(load_engine("sface")).encode(sample("obama.jpg"))
        assert np.allclose(template.descriptor, local.descriptor, atol=1e-6)
        assert template.box == local.box
        with pytest.raises(FaceRefusal) as refused:
            probes.encode(sample("two_people.jpg"), None)
        assert refused.value.code == "multiple_faces" and len(refused.value.faces) == 2
    finally:
        probes.close()


def test_a_probe_past_its_time_limit_is_too_slow_or_busy() -> None:
    slow = EncoderConfig("dlib", detect_max_side=4000)
    probes = ProbeEncoder(slow, workers=1, timeout_s=0.3)
    probes.warm()
    photo = slow_photo()

    def outcome(_: int) -> type[Exception]:
        with pytest.raises((PipelineBusy, PipelineTimeout)) as caught:
            probes.encode(photo, None)
        return caught.type

    try:
        with ThreadPoolExecutor(6) as threads:
            outcomes = list(threads.map(outcome, range(6)))
        # One worker: the probe it runs and the one or two its executor has already queued
        # for it (how many depends on when the worker takes the first) were taken up; the
        # rest waited out their time for a worker.
        assert outcomes.count(PipelineTimeout) in (2, 3)
        assert outcomes.count(PipelineBusy) == 6 - outcomes.count(PipelineTimeout)
    finally:
        probes.close()
