"""metalearn_lib.models: the MLP, the ConvNet, and parameter dicts."""

import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call, vmap

from metalearn_lib import MLP, ConvNet, FewShotTasks, meta_gradient, parameters_of


def test_mlp_shape_seed_and_parameters_of():
    net = MLP(seed=0)
    assert net(torch.zeros(7, 1)).shape == (7, 1)
    same, other = MLP(seed=0), MLP(seed=1)
    assert all(torch.equal(a, b) for a, b in zip(net.parameters(), same.parameters()))
    assert not torch.equal(net.net[0].weight, other.net[0].weight)
    params = parameters_of(net)
    assert list(params) == [n for n, _ in net.named_parameters()]
    assert all(p.requires_grad and p.grad_fn is None for p in params.values())
    params["net.0.bias"].data.add_(1.0)  # a copy: the module is untouched
    assert torch.equal(net.net[0].bias, same.net[0].bias)
    with pytest.raises(TypeError, match="nn.Module"):
        parameters_of("mlp")


# -- the conv net ------------------------------------------------------------------


def test_convnet_shapes_seed_and_errors():
    net = ConvNet(out_features=5, seed=0)
    assert net.blocks == 3 and net(torch.zeros(4, 1, 8, 8)).shape == (4, 5)
    assert ConvNet(image_size=28, seed=0).blocks == 4
    same = ConvNet(out_features=5, seed=0)
    assert all(torch.equal(a, b) for a, b in zip(net.parameters(), same.parameters()))
    other = ConvNet(out_features=5, seed=1)
    assert not torch.equal(net.head.weight, other.head.weight)
    with pytest.raises(ValueError, match=r"images of shape \[batch, 1, 8, 8\]"):
        net(torch.zeros(4, 64))
    with pytest.raises(ValueError, match="norm must be one of"):
        ConvNet(norm="instance")
    with pytest.raises(ValueError, match="hidden must be >= 1"):
        ConvNet(hidden=0)
    with pytest.raises(TypeError, match="image_size must be an int"):
        ConvNet(image_size=8.0)


@pytest.mark.parametrize("norm", [None, "group", "batch"])
def test_convnet_works_under_vmap_per_task(norm, split, generator):
    """vmap over tasks gives exactly what calling the net on each task does."""
    net = ConvNet(out_features=5, hidden=8, norm=norm, seed=0)
    params = parameters_of(net)
    batch = FewShotTasks(split[0]).sample(3, 2, generator=generator)

    def run(x):
        return functional_call(net, params, (x,))

    batched = vmap(run)(batch.support_x)
    one_by_one = torch.stack([run(x) for x in batch.support_x])
    torch.testing.assert_close(batched, one_by_one)
    g = meta_gradient(
        net, params, batch, algorithm="maml", inner_steps=1, inner_lr=0.1, loss_fn=F.cross_entropy
    )
    assert all(torch.isfinite(v).all() and v.shape == params[k].shape for k, v in g.items())


def test_transfer_copies_the_body_and_zeroes_the_head():
    big = ConvNet(out_features=28, hidden=8, seed=0)
    small = ConvNet(out_features=5, hidden=8, seed=1)
    params = small.transfer(parameters_of(big))
    assert params["head.weight"].shape == (5, 8) and not params["head.weight"].any()
    assert torch.equal(params["features.0.weight"], big.features[0].weight)
    logits = functional_call(small, params, (torch.rand(3, 1, 8, 8),))
    assert torch.equal(logits, torch.zeros(3, 5))  # equal odds for every class
    with pytest.raises(ValueError, match="expects"):
        ConvNet(out_features=5, hidden=4).transfer(parameters_of(big))
