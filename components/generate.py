"""Generate labelled word images into a sharded dataset artifact."""

from kfp import dsl

from components.images import COMPONENTS_IMAGE


@dsl.component(base_image=COMPONENTS_IMAGE, install_kfp_package=False)
def generate_words(
    split: str,
    num_samples: int,
    seed: int,
    tier: str,
    font_set: str,
    num_shards: int,
    workers: int,
    dataset: dsl.Output[dsl.Dataset],
):
    """Render ``num_samples`` images of the ``split`` words (fonts from ``font_set``, degradations of ``tier``)."""
    import logging

    from wordocr.generate import generate_dataset

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    manifest = generate_dataset(
        dataset.path,
        split=split,
        num_samples=num_samples,
        seed=seed,
        font_set=font_set,
        tier=tier,
        num_shards=num_shards,
        workers=workers,
    )
    dataset.metadata.update({"split": split, "count": manifest.count, "tier": tier, "font_set": font_set})
