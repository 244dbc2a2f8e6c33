"""The gs:// paths with the real google-cloud-storage client against fake-gcs-server on loopback."""

from pathlib import Path

import numpy as np

from wordocr import generate, shards, storage
from wordocr.dataset_spec import DatasetSpec


def test_storage_write_read_list_exists_on_gcs(gcs_server, tmp_path):
    base = gcs_server.uri("storage-test")
    storage.write_bytes(storage.join(base, "a.txt"), b"hello")
    local = tmp_path / "b.bin"
    local.write_bytes(b"\x00\x01" * 1000)
    storage.upload_file(local, storage.join(base, "sub", "b.bin"))
    assert storage.read_bytes(storage.join(base, "a.txt")) == b"hello"
    assert storage.exists(storage.join(base, "a.txt"))
    assert not storage.exists(storage.join(base, "missing.txt"))
    assert storage.list_names(base) == ["a.txt", "sub/b.bin"]
    storage.download_file(storage.join(base, "sub", "b.bin"), tmp_path / "copy.bin")
    assert (tmp_path / "copy.bin").read_bytes() == local.read_bytes()


def test_generated_dataset_round_trips_through_gcs(gcs_server, tmp_path):
    uri = gcs_server.uri("data")
    spec = DatasetSpec("val", 8, seed=9, tier="hard", num_shards=2)
    manifest = generate.generate_dataset(uri, spec, workers=1)
    assert storage.list_names(uri) == sorted(
        [shards.MANIFEST_NAME, generate.PREVIEW_NAME, *(s.name for s in manifest.shards)]
    )
    dataset, read_manifest = shards.load_tf_dataset(uri, cache_dir=tmp_path / "cache")
    assert read_manifest.to_json() == manifest.to_json()
    images, texts = zip(*[(i.numpy(), t.numpy().decode()) for i, t in dataset], strict=True)
    expected = [s for index in range(2) for s in generate.shard_samples(spec, index)]
    assert sorted(texts) == sorted(s.text for s in expected)
    by_text = {s.text: s.image for s in expected}
    assert all(np.array_equal(image, by_text[text]) for image, text in zip(images, texts, strict=True))
    # Same params again: the manifest on GCS is found and nothing is rewritten.
    assert generate.generate_dataset(uri, spec).to_json() == manifest.to_json()


def test_gcs_dataset_is_cached_once_per_uri_and_verified(gcs_server, tmp_path, monkeypatch):
    uri = gcs_server.uri("cached")
    generate.generate_dataset(uri, DatasetSpec("val", 4, seed=3, tier="clean", num_shards=2), workers=1)
    monkeypatch.setenv(shards.CACHE_ENV, str(tmp_path / "root"))
    downloads = []
    download = storage.download_file
    monkeypatch.setattr(storage, "download_file", lambda u, p: (downloads.append(u), download(u, p)))
    first, _ = shards.local_shard_paths(uri)
    second, _ = shards.local_shard_paths(uri)
    assert first == second and len(downloads) == 2  # the second call found both shards
    assert all(str(tmp_path / "root") in p for p in first)
    assert shards.dataset_cache_dir(uri) != shards.dataset_cache_dir(uri + "-other")
    Path(first[0]).write_bytes(b"corrupt")
    shards.local_shard_paths(uri)
    assert len(downloads) == 3  # a damaged cached shard is fetched again
