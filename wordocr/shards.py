"""Labelled word images as sharded TFRecord files plus a JSON manifest.

A dataset is a folder (local or ``gs://``)::

    manifest.json                      written last: a dataset without it is incomplete
    shard-00000-of-00004.tfrecord      tf.train.Example records
    ...

Each record holds ``image`` (PNG bytes of an already preprocessed ``InputSpec`` image: gray,
uint8, dark ink on light background), ``text`` (the word, UTF-8) and ``font`` (the font's
name, for per-font error analysis). Because the manifest is written only after every shard is
in place, and each shard is written atomically, a reader that finds a manifest finds whole data.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from wordocr import storage
from wordocr.config import InputSpec

log = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.json"
FORMAT = "word-ocr-shards/1"
# Where gs:// datasets are downloaded when no cache_dir is given: one folder per dataset URI
# under this root, so a second read of the same dataset finds its shards instead of fetching them.
CACHE_ENV = "WORD_OCR_CACHE"
_HASH_CHUNK = 1 << 20


@dataclass(frozen=True)
class Sample:
    image: np.ndarray  # uint8 [height, width]
    text: str
    font: str = ""


@dataclass
class ShardInfo:
    name: str
    count: int
    sha256: str


@dataclass
class Manifest:
    split: str
    input_spec: dict
    alphabet: str
    shards: list[ShardInfo] = field(default_factory=list)
    params: dict = field(default_factory=dict)  # how the data was made: seed, fonts, tier ...
    format: str = FORMAT

    @property
    def count(self) -> int:
        return sum(s.count for s in self.shards)

    def to_json(self) -> str:
        data = asdict(self)
        data["count"] = self.count
        return json.dumps(data, indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        data = json.loads(text)
        if data.get("format") != FORMAT:
            raise ValueError(f"unknown dataset format {data.get('format')!r}; expected {FORMAT!r}")
        data.pop("count", None)
        data["shards"] = [ShardInfo(**s) for s in data["shards"]]
        return cls(**data)


def shard_name(index: int, total: int) -> str:
    return f"shard-{index:05d}-of-{total:05d}.tfrecord"


def encode_png(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    image = np.asarray(image)
    if image.ndim != 2 or image.dtype != np.uint8:
        raise ValueError(f"expected a gray uint8 [H, W] image, got {image.dtype} {image.shape}")
    # No mode= argument: Pillow deprecates it; a 2-D uint8 array is mode "L" anyway.
    Image.fromarray(np.ascontiguousarray(image)).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def _example_bytes(sample: Sample) -> bytes:
    import tensorflow as tf

    def _bytes(value: bytes) -> tf.train.Feature:
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))

    example = tf.train.Example(
        features=tf.train.Features(
            feature={
                "image": _bytes(encode_png(sample.image)),
                "text": _bytes(sample.text.encode()),
                "font": _bytes(sample.font.encode()),
            }
        )
    )
    # Protobuf serialises map fields (the feature map) in an order that can differ between
    # processes; deterministic=True makes the same sample the same bytes everywhere.
    return example.SerializeToString(deterministic=True)


def write_shard(samples: Iterable[Sample], dataset_uri: str, index: int, total: int) -> ShardInfo:
    """Write one shard atomically and return what the manifest records of it."""
    import tensorflow as tf

    name = shard_name(index, total)
    count = 0
    with tempfile.TemporaryDirectory(prefix="word-ocr-shard-") as tmp:
        local = Path(tmp, name)
        with tf.io.TFRecordWriter(str(local)) as writer:
            for sample in samples:
                writer.write(_example_bytes(sample))
                count += 1
        digest = file_sha256(local)
        storage.upload_file(local, storage.join(dataset_uri, name))
    log.info("wrote %s (%d samples)", storage.join(dataset_uri, name), count)
    return ShardInfo(name=name, count=count, sha256=digest)


def write_manifest(manifest: Manifest, dataset_uri: str) -> None:
    storage.write_bytes(storage.join(dataset_uri, MANIFEST_NAME), manifest.to_json().encode())


def read_manifest(dataset_uri: str) -> Manifest:
    uri = storage.join(dataset_uri, MANIFEST_NAME)
    if not storage.exists(uri):
        raise FileNotFoundError(f"no {MANIFEST_NAME} under {dataset_uri}: the dataset is missing or incomplete")
    return Manifest.from_json(storage.read_bytes(uri).decode())


def local_shard_paths(dataset_uri: str, cache_dir: str | Path | None = None) -> tuple[list[str], Manifest]:
    """Paths of the dataset's shards on local disk, downloading them from GCS into ``cache_dir``.

    Without ``cache_dir`` a gs:// dataset goes to ``dataset_cache_dir(dataset_uri)``: the same
    folder every call, so shards already there with the manifest's sha256 are not fetched again.
    """
    manifest = read_manifest(dataset_uri)
    if not storage.is_gcs(dataset_uri):
        return [str(Path(dataset_uri, s.name)) for s in manifest.shards], manifest
    cache = Path(cache_dir) if cache_dir is not None else dataset_cache_dir(dataset_uri)
    paths = []
    for shard in manifest.shards:
        local = cache / shard.name
        if not (local.exists() and file_sha256(local) == shard.sha256):
            storage.download_file(storage.join(dataset_uri, shard.name), local)
            digest = file_sha256(local)
            if digest != shard.sha256:
                local.unlink(missing_ok=True)
                raise ValueError(
                    f"{storage.join(dataset_uri, shard.name)} has sha256 {digest}, "
                    f"but the manifest says {shard.sha256}: the dataset changed or is corrupt"
                )
        paths.append(str(local))
    return paths, manifest


def dataset_cache_dir(dataset_uri: str) -> Path:
    """The local folder a remote dataset is cached in: ``$WORD_OCR_CACHE`` (or the system temp
    folder's ``word-ocr-cache``) / the first 16 hex digits of the URI's sha256."""
    root = os.environ.get(CACHE_ENV) or os.path.join(tempfile.gettempdir(), "word-ocr-cache")
    key = hashlib.sha256(dataset_uri.rstrip("/").encode()).hexdigest()[:16]
    return Path(root, key)


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file, read in chunks (shards can be larger than memory allows twice)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_HASH_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_tf_dataset(dataset_uri: str, cache_dir: str | Path | None = None):
    """A ``tf.data.Dataset`` of ``(image uint8 [H, W], text tf.string)`` and the dataset's manifest."""
    import tensorflow as tf

    paths, manifest = local_shard_paths(dataset_uri, cache_dir)
    spec = InputSpec.from_dict(manifest.input_spec)
    features = {
        "image": tf.io.FixedLenFeature([], tf.string),
        "text": tf.io.FixedLenFeature([], tf.string),
    }

    def parse(record):
        parsed = tf.io.parse_single_example(record, features)
        image = tf.io.decode_png(parsed["image"], channels=1)
        image = tf.ensure_shape(tf.squeeze(image, -1), [spec.height, spec.width])
        return image, parsed["text"]

    dataset = tf.data.TFRecordDataset(paths, num_parallel_reads=tf.data.AUTOTUNE)
    return dataset.map(parse, num_parallel_calls=tf.data.AUTOTUNE), manifest


def iter_samples(dataset_uri: str, cache_dir: str | Path | None = None) -> Iterator[Sample]:
    """Every sample of a dataset as numpy, in shard order (for evaluation and tests)."""
    import tensorflow as tf

    paths, _ = local_shard_paths(dataset_uri, cache_dir)
    for path in paths:
        for record in tf.data.TFRecordDataset(path):
            example = tf.train.Example.FromString(record.numpy())
            feats = example.features.feature
            image = np.array(Image.open(io.BytesIO(feats["image"].bytes_list.value[0])))
            yield Sample(image, feats["text"].bytes_list.value[0].decode(), feats["font"].bytes_list.value[0].decode())
