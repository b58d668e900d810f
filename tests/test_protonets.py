"""metalearn_lib.protonets: prototypes, distance logits, episodic training, evaluation."""

import pytest
import torch
from torch import nn

from metalearn_lib import ConvNet, FewShotTasks
from metalearn_lib.protonets import (
    body_params,
    evaluate_protonet,
    prototype_logits,
    prototypes,
    train_protonet,
)


def test_prototypes_are_class_means_and_logits_negative_squared_distances():
    embeddings = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 4.0], [1.0, 1.0]])
    labels = torch.tensor([0, 0, 1, 2])
    centres = prototypes(embeddings, labels, 3)
    assert torch.equal(centres, torch.tensor([[1.0, 0.0], [0.0, 4.0], [1.0, 1.0]]))
    identity = nn.Flatten()
    query = torch.tensor([[1.0, 3.0], [1.0, 0.5]])
    logits = prototype_logits(identity, {}, embeddings, labels, query, 3)
    expected = -torch.tensor([[9.0, 2.0, 4.0], [0.25, 13.25, 0.25]])
    assert torch.equal(logits, expected)
    assert logits.argmax(dim=1).tolist() == [1, 0]  # the closest prototype wins (ties: first)


def test_body_is_checked():
    net = ConvNet(out_features=5, hidden=4, seed=0)
    assert all(not n.startswith("head") for n in body_params(net))
    with pytest.raises(ValueError, match="body='trunk' is not a submodule"):
        body_params(net, body="trunk")


def test_training_lowers_the_episode_loss_and_leaves_the_head(split):
    train_classes, test_classes = split
    net = ConvNet(out_features=5, hidden=8, seed=0)
    tasks = FewShotTasks(train_classes, ways=5)
    params, history = train_protonet(net, tasks, iterations=40, meta_batch_size=4, progress=False)
    assert params.keys() == dict(net.named_parameters()).keys()
    assert torch.equal(params["head.weight"], net.head.weight.detach())
    assert not torch.equal(params["features.0.weight"], net.features[0].weight.detach())
    early, late = history.loss[:10], history.loss[-10:]
    assert sum(late) < sum(early)
    test = FewShotTasks(test_classes, ways=5)
    before = evaluate_protonet(net, dict(net.named_parameters()), test, num_tasks=50)
    after = evaluate_protonet(net, params, test, num_tasks=50, chunk_size=20)
    assert after.steps == (0,) and after.metrics.shape == (1, 50)
    assert 0.2 < before.metric_mean[0] and 0 <= after.metric_mean[0] <= 1
    again = evaluate_protonet(net, params, test, num_tasks=50, chunk_size=20)
    assert torch.equal(after.metrics, again.metrics)  # same seed, same numbers
