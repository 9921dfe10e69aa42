"""Probes in worker processes: a template or a refusal crosses back whole; a probe's time limit
counts its own work, not a pool starting or other probes; a probe past it is refused as busy
(never taken up) or too slow (taken up, not finished); a file that is no photo is refused
before any worker is needed."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from matcher import (
    EncoderConfig,
    FaceRefusal,
    Matcher,
    PipelineBusy,
    PipelineStarting,
    PipelineTimeout,
    ProbeEncoder,
    load_engine,
)
from tests.support.data import sample
from tests.support.images import png_header_only, slow_photo


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
        # One worker: the probe it took up ran out of time, and the worker stays taken until
        # it has finished; the other five waited out their time for it.
        assert outcomes.count(PipelineTimeout) == 1
        assert outcomes.count(PipelineBusy) == 5
    finally:
        probes.close()


def test_a_cold_pool_starting_does_not_count_against_the_probe() -> None:
    """A time limit far shorter than the workers take to start and load their models: the
    first probe waits for them, then gets the whole limit for its own work."""
    probes = ProbeEncoder(EncoderConfig("sface"), workers=1, timeout_s=1.0)
    try:
        assert probes.ready_workers == 0
        template = probes.encode(sample("obama.jpg"), None)
        assert template.descriptor.shape == (128,)
        assert probes.ready_workers == 1
    finally:
        probes.close()


def test_what_is_no_photo_is_refused_before_a_worker_is_needed() -> None:
    """Workers that never start in time (a limit of 0 s): a file that is no photo, one over
    the byte limit and one over the pixel limit by its header are refused as what they are;
    only a real photo needs a worker, and is refused as the matcher starting."""
    config = EncoderConfig("sface")
    probes = ProbeEncoder(config, workers=1, timeout_s=10, start_timeout_s=0)
    try:
        for photo, code in [
            (b"17 bytes, no pic", "unsupported_image"),
            (b"\xff\xd8\xff" + bytes(config.limits.max_bytes), "image_too_large"),
            (png_header_only(20_000, 20_000), "image_too_large"),
            (sample("obama.jpg")[:2000], "unsupported_image"),
        ]:
            with pytest.raises(FaceRefusal) as refused:
                probes.encode(photo, None)
            assert refused.value.code == code
        with pytest.raises(PipelineStarting):
            probes.encode(sample("obama.jpg"), None)
    finally:
        probes.close()


def test_past_the_line_a_probe_is_refused_at_once() -> None:
    """One worker and no room to wait: of three slow probes sent at once, one is taken up and
    finishes within its generous limit; the other two are refused at once as busy, where
    waiting would have seen them through."""
    probes = ProbeEncoder(EncoderConfig("dlib", detect_max_side=4000), 1, 60, waiting=0)
    probes.warm()
    photo = slow_photo()

    def outcome(_: int) -> str:
        try:
            probes.encode(photo, None)
        except PipelineBusy:
            return "busy"
        except FaceRefusal as refusal:  # the slow photo holds no face: its work is done
            return refusal.code
        return "template"

    try:
        with ThreadPoolExecutor(3) as threads:
            outcomes = sorted(threads.map(outcome, range(3)))
        assert outcomes[:2] == ["busy", "busy"] and outcomes[2] != "busy"
    finally:
        probes.close()
