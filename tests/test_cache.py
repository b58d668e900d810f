"""The chapters' training cache: one training per setting and kernel."""

import torch

from metalearn_lib.teaching import cache


def test_train_cached_trains_once(monkeypatch):
    calls = []
    real = cache.meta_train

    def counting(*args, **kwargs):
        calls.append(kwargs["algorithm"])
        return real(*args, **kwargs)

    monkeypatch.setattr(cache, "meta_train", counting)
    cache.clear_cache()  # whatever an earlier test trained
    settings = dict(iterations=3, meta_batch_size=2, seed=123, progress=False)
    p1, h1 = cache.train_cached("fomaml", **settings)
    p2, h2 = cache.train_cached("fomaml", **settings)
    assert calls == ["fomaml"]
    assert h1.loss == h2.loss and all(torch.equal(p1[k], p2[k]) for k in p1)
    p1["net.0.weight"].add_(1.0)  # the cache hands out copies
    p3, _ = cache.train_cached("fomaml", **settings)
    assert torch.equal(p3["net.0.weight"], p2["net.0.weight"])
    cache.clear_cache()
    assert cache.cached_runs() == 0
    cache.train_cached("fomaml", **settings)
    assert calls == ["fomaml", "fomaml"]  # trained again after clearing
