"""The gs:// paths with the real google-cloud-storage client against fake-gcs-server on loopback."""

import numpy as np

from wordocr import generate, shards, storage


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
    manifest = generate.generate_dataset(uri, "val", 8, seed=9, tier="hard", num_shards=2, workers=1)
    assert storage.list_names(uri) == sorted(
        [shards.MANIFEST_NAME, generate.PREVIEW_NAME, *(s.name for s in manifest.shards)]
    )
    dataset, read_manifest = shards.load_tf_dataset(uri, cache_dir=tmp_path / "cache")
    assert read_manifest.to_json() == manifest.to_json()
    images, texts = zip(*[(i.numpy(), t.numpy().decode()) for i, t in dataset], strict=True)
    expected = [s for index in range(2) for s in generate.shard_samples("val", index, 2, 8, 9, tier="hard")]
    assert sorted(texts) == sorted(s.text for s in expected)
    by_text = {s.text: s.image for s in expected}
    assert all(np.array_equal(image, by_text[text]) for image, text in zip(images, texts, strict=True))
    # Same params again: the manifest on GCS is found and nothing is rewritten.
    assert generate.generate_dataset(uri, "val", 8, seed=9, tier="hard", num_shards=2).to_json() == manifest.to_json()
