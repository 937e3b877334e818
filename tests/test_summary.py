import netdsl as nd
from netdsl.summary import layer_rows


def test_lenet_rows_and_total():
    from examples.lenet import network
    net = network(weights=None)
    rows = {r.name: r for r in layer_rows(net.graph)}
    assert rows["conv1"].params == 520 and rows["conv1"].shape == "(1, 20, 24, 24)"
    assert rows["conv1"].macs == 20 * 24 * 24 * 25
    assert rows["ip1"].params == 400500
    text = net.summary()
    assert "431,080 parameters" in text


def test_symbolic_macs_per_batch_element():
    net = nd.Network("s")
    x = net.input("x", ("N", 8))
    net.output(nd.linear(x, net.parameter("w", (4, 8))), "y")
    assert layer_rows(net.graph)[0].macs == 32
    assert "symbolic dims counted as 1" in net.summary()
