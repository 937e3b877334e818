import numpy as np

import netdsl as nd
from netdsl import nn
from netdsl.backends import reference
from netdsl.passes import fold_batch_norm, fold_constants, optimize, remove_identities


def _run(graph, feeds):
    return reference.compile(graph, dtype="float64")(feeds)


def _net():
    net = nd.Network("f")
    x = net.input("x", ("N", 3, 8, 8))
    y = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU(), nn.Dropout(0.1),
                      nn.Conv2d(4, 4, 3), nn.BatchNorm2d(4), name="body")(x)
    c = net.constant(np.arange(4, dtype=np.float32)).reshape(1, 4, 1, 1) * 2.0
    net.output(y + c, "y")
    net.init_random(3)
    return net


def test_folding_preserves_results_and_removes_layers():
    net = _net()
    feeds = {"x": np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype(np.float32)}
    ref = _run(net.graph, feeds)["y"]
    g = optimize(net.graph)
    ops = [n.op for n in g.nodes]
    assert "batch_norm" not in ops and "dropout" not in ops and "reshape" not in ops
    np.testing.assert_allclose(_run(g, feeds)["y"], ref, rtol=1e-5, atol=1e-5)
    assert [n.op for n in net.graph.nodes].count("batch_norm") == 2  # input graph untouched


def test_fold_batch_norm_keeps_names_and_is_lazy():
    net = _net()
    g = fold_batch_norm(net.graph)
    convs = [n for n in g.nodes if n.op == "conv"]
    assert [c.name for c in convs] == ["body.0", "body.4"]
    assert convs[0].outputs[0].name == "body.1"  # the batch norm's tensor name survives
    calls = []
    p = g.params["body.0.weight+body.1"]
    orig = net.graph.params["body.0.weight"].source
    net.graph.params["body.0.weight"].source = lambda: (calls.append(1), orig())[1]
    assert not calls
    p.value()
    assert calls


def test_fold_batch_norm_eps_outside_sqrt():
    """Darknet's batch norm folds as scale / (sqrt(var) + eps): variances near eps**2 make the other formula
    differ by far more than the tolerance."""
    def build(mode):
        net = nd.Network("d")
        x = net.input("x", ("N", 3, 6, 6))
        net.output(nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, bias=False),
                                 nn.BatchNorm2d(4, eps=1e-3, eps_mode=mode), name="body")(x), "y")
        net.init_random(5)
        var = np.random.default_rng(1).uniform(1e-4, 4e-3, 4).astype(np.float32)
        net.graph.params["body.1.running_var"].source = lambda: var
        return net

    feeds = {"x": np.random.default_rng(2).standard_normal((2, 3, 6, 6)).astype(np.float32)}
    net = build("outside_sqrt")
    g = fold_batch_norm(net.graph)
    assert "batch_norm" not in [n.op for n in g.nodes]
    ref, got = _run(net.graph, feeds)["y"], _run(g, feeds)["y"]
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)
    other = _run(build("inside_sqrt").graph, feeds)["y"]
    assert np.abs(other - ref).max() > 0.1 * np.abs(ref).max()


def test_fold_constants_and_identities_individually():
    net = _net()
    assert not any(n.op == "dropout" for n in remove_identities(net.graph).nodes)
    g = fold_constants(net.graph)
    consts = [n for n in g.nodes if n.op == "constant"]
    assert len(consts) == 1 and consts[0].attrs["value"].shape == (1, 4, 1, 1)
    np.testing.assert_array_equal(consts[0].attrs["value"].ravel(), np.arange(4) * 2)
