"""Distributed enrolment: the encode step on a Dask cluster, its results in Parquet shards,
loaded into the database and the index as an enrolment on one machine would be.

A shard covers a fixed run of manifest rows and is written whole or not at all (under a
temporary name, then renamed), so a run that dies resumes by encoding only the shards not yet
written. A shard holds each row's number, its photo's SHA-256 and its template (sealed, as in
the database) or refusal code: nothing about the person, whose five fields are read from the
manifest again when the shards are loaded. The shards are deleted once loaded, since the
database is where templates are kept.

The workers read the photos and write the shards themselves, so the images folder and the
shards folder must be at the same paths on every worker and on the machine that runs the
command.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from itertools import islice
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from distributed import Client, LocalCluster, as_completed
from tqdm import tqdm

from app.enrolment.local import (
    Enrolment,
    EnrolmentReport,
    Item,
    ManifestRow,
    PhotoJob,
    Reject,
    manifest_rows,
)
from app.gallery.photos import file_sha256, locate_photo
from index import TemplateKeys
from matcher.pool import EncoderConfig, Encoding, encode_here

SHARD_SCHEMA = pa.schema(
    [
        ("row", pa.int64()),
        ("sha256", pa.string()),  # null: the photo could not be read
        ("descriptor", pa.binary()),  # sealed; null: refused
        ("refusal", pa.string()),
    ]
)
RUN_FILE = "run.json"


class ClusterUnreachable(ValueError):
    """No Dask scheduler answered at the address given."""


class ShardsInUse(ValueError):
    """The shards folder belongs to a run of another manifest, engine or shard size."""


@dataclass(frozen=True)
class ShardRun:
    """What a shards folder was written for; a run resumes only into its own."""

    manifest_sha256: str
    encoder: str
    shard_rows: int


@dataclass
class ShardedReport:
    enrolment: EnrolmentReport
    shards_encoded: int = 0
    shards_reused: int = 0


@contextmanager
def dask_client(cluster: str, workers: int) -> Iterator[Client]:
    """A client of the cluster at `cluster` (a scheduler address), or of a cluster of
    `workers` processes started here for `local`, each encoding one photo at a time."""
    if cluster != "local":
        try:
            client = Client(cluster)
        except OSError as problem:
            raise ClusterUnreachable(
                f"the Dask cluster at {cluster} could not be reached: {problem}"
            ) from None
        with client:
            try:
                client.wait_for_workers(1, timeout=120)
            except TimeoutError:
                raise ClusterUnreachable(
                    f"the Dask cluster at {cluster} has had no workers for two minutes"
                ) from None
            yield client
        return
    with (
        LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
        ) as local,
        Client(local) as client,
    ):
        yield client


def _shard_context(row: int, sha256: str) -> str:
    return f"shard:{row}:{sha256}"


def encode_shard(
    rows: list[tuple[int, str]], images: str, config: EncoderConfig, keys: TemplateKeys, path: str
) -> int:
    """On a worker: locate, hash and encode each row's photo, then write the shard whole,
    its templates sealed."""
    columns: dict[str, list[object]] = {name: [] for name in SHARD_SCHEMA.names}
    for row, ref in rows:
        sha256: str | None
        descriptor: bytes | None
        refusal: str | None
        located = locate_photo(Path(images), ref)
        if isinstance(located, str):
            sha256, (descriptor, refusal) = None, (None, located)
        else:
            sha256, (descriptor, refusal) = file_sha256(located), encode_here(config, str(located))
            if descriptor is not None:
                descriptor = keys.seal(descriptor, _shard_context(row, sha256))
        for name, value in zip(SHARD_SCHEMA.names, (row, sha256, descriptor, refusal), strict=True):
            columns[name].append(value)
    written = Path(path)
    tmp = written.with_name(f".{written.name}.{uuid.uuid4().hex}.tmp")
    pq.write_table(pa.table(columns, schema=SHARD_SCHEMA), tmp)
    os.replace(tmp, written)
    return len(rows)


class ShardedEnrolment:
    """Enrolment whose encode step runs on a Dask cluster, through a folder of shards."""

    def __init__(self, enrolment: Enrolment, shards: Path, shard_rows: int = 1000) -> None:
        self.enrolment = enrolment
        self.shards = shards
        self.shard_rows = shard_rows

    def claim(self, manifest: Path) -> None:
        """Take the shards folder for this run, or refuse one that holds another run's
        shards; temporary files of a run that died are removed."""
        run = ShardRun(file_sha256(manifest), repr(self.enrolment.encoder), self.shard_rows)
        record = self.shards / RUN_FILE
        self.shards.mkdir(parents=True, exist_ok=True)
        if record.exists() and json.loads(record.read_text()) != asdict(run):
            raise ShardsInUse(
                f"the shards folder {self.shards} holds shards of another manifest, engine or "
                "shard size: finish that run, or give an empty folder"
            )
        record.write_text(json.dumps(asdict(run)))
        for stale in self.shards.glob(".*.tmp"):
            stale.unlink()

    def run(self, manifest: Path, images: Path, client: Client, rows: int) -> ShardedReport:
        """Encode the shards not yet written, load them all, then delete them."""
        self.claim(manifest)
        shards = -(-rows // self.shard_rows)
        with tqdm(total=shards, unit="shard", desc="encoding") as progress:
            encoded, reused = self.encode(manifest, images, client, progress)
        with tqdm(total=rows, unit="photo", desc="loading") as progress:
            report = ShardedReport(self.load(manifest, images, progress), encoded, reused)
        shutil.rmtree(self.shards)
        return report

    def encode(
        self, manifest: Path, images: Path, client: Client, progress: tqdm | None = None
    ) -> tuple[int, int]:
        """Encode every shard not yet written, keeping a few per worker in flight; returns
        the shards encoded and those reused."""
        window = 4 * sum(client.nthreads().values())
        images_at = str(images.resolve())
        pending = as_completed()
        encoded = reused = 0
        for number, chunk in self._chunks(manifest):
            path = self._shard(number)
            if path.exists():
                reused += 1
                _tick(progress)
                continue
            rows = [(row, ref) for row, identity, ref in chunk if identity is not None]
            config, keys = self.enrolment.encoder, self.enrolment.keys
            pending.add(client.submit(encode_shard, rows, images_at, config, keys, str(path)))
            encoded += 1
            if pending.count() >= window:
                next(pending).result()
                _tick(progress)
        for future in pending:
            future.result()
            _tick(progress)
        return encoded, reused

    def load(self, manifest: Path, images: Path, progress: tqdm | None = None) -> EnrolmentReport:
        """Record every shard's templates and refusals, row by row, with the five fields from
        the manifest; photos already enrolled are counted, not written again."""
        encodings: dict[int, Encoding] = {}
        keys = self.enrolment.keys

        def items() -> Iterator[PhotoJob | Reject]:
            for number, chunk in self._chunks(manifest):
                results = {r["row"]: r for r in pq.read_table(self._shard(number)).to_pylist()}
                for row, identity, ref in chunk:
                    if identity is None:
                        yield Reject(row, ref, "invalid_record")
                        continue
                    result = results[row]
                    sha256, descriptor = result["sha256"], result["descriptor"]
                    if sha256 is None:
                        yield Reject(row, ref, result["refusal"])
                        continue
                    if descriptor is not None:
                        descriptor = keys.open(descriptor, _shard_context(row, sha256))
                    encodings[row] = (descriptor, result["refusal"])
                    yield PhotoJob(row, identity, images / ref, ref, sha256)

        def encoded(item: Item) -> tuple[Item, Encoding | None]:
            return item, encodings.pop(item.row, None)

        return self.enrolment.record(map(encoded, self.enrolment.new_only(items())), progress)

    def _chunks(self, manifest: Path) -> Iterator[tuple[int, list[ManifestRow]]]:
        """The manifest's rows, a shard's worth at a time, numbered."""
        rows = manifest_rows(manifest)
        return enumerate(iter(lambda: list(islice(rows, self.shard_rows)), []))

    def _shard(self, number: int) -> Path:
        return self.shards / f"shard-{number:06d}.parquet"


def _tick(progress: tqdm | None) -> None:
    if progress is not None:
        progress.update(1)
