"""TCN emulator models: sparse first layer vs dense, architecture bookkeeping, the Emulator API."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from neuroemu.errors import CheckpointError, ConfigError, InputSpikesError
from neuroemu.inputs.spikes import InputSpikes
from neuroemu.models.emulator import Emulator, forward_long
from neuroemu.models.sparse_conv import (SparseCausalConv1d, dense_causal_conv1d, sparse_causal_conv1d,
                                         sparse_events)
from neuroemu.models.tcn import TCN, TCNConfig, default_kernels

torch.set_num_threads(1)


def _spikes(shape, density, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=g) < density).float()


# --------------------------------------------------------------------------- sparse first layer
@pytest.mark.parametrize("b,t,c,k,o", [(3, 50, 7, 5, 4), (2, 30, 13, 1, 3), (1, 10, 4, 12, 2), (4, 64, 40, 9, 16)])
def test_sparse_conv_forward_matches_dense(b, t, c, k, o):
    x = _spikes((b, t, c), 0.08, seed=b + t)
    w = torch.randn(o, c, k)
    bias = torch.randn(o)
    ys = sparse_causal_conv1d(x, w, bias)
    yd = dense_causal_conv1d(x, w, bias)
    assert ys.shape == (b, o, t)
    torch.testing.assert_close(ys, yd, rtol=1e-5, atol=1e-5)


def test_sparse_conv_is_causal_and_last_tap_is_current_time():
    x = torch.zeros(1, 20, 1)
    x[0, 5, 0] = 1
    w = torch.arange(1.0, 5.0).view(1, 1, 4)  # taps [1, 2, 3, 4]; the last multiplies the current ms
    y = sparse_causal_conv1d(x, w)[0, 0]
    expected = torch.zeros(20)
    expected[5:9] = torch.tensor([4.0, 3.0, 2.0, 1.0])
    torch.testing.assert_close(y, expected)
    torch.testing.assert_close(dense_causal_conv1d(x, w)[0, 0], expected)


def test_sparse_conv_no_leak_between_batch_elements_and_counts():
    x = torch.zeros(2, 6, 3)
    x[0, 5, 1] = 2.0  # a count of 2 at the last ms of element 0
    w = torch.ones(1, 3, 4)
    y = sparse_causal_conv1d(x, w)
    assert y[1].abs().sum() == 0
    assert float(y[0, 0, 5]) == 2.0
    torch.testing.assert_close(y, dense_causal_conv1d(x, w))


def test_sparse_conv_empty_input():
    x = torch.zeros(2, 9, 5)
    w = torch.randn(3, 5, 4, requires_grad=True)
    b = torch.randn(3, requires_grad=True)
    y = sparse_causal_conv1d(x, w, b)
    torch.testing.assert_close(y, b.detach().view(1, 3, 1).expand(2, 3, 9))
    y.sum().backward()
    assert torch.all(w.grad == 0)
    torch.testing.assert_close(b.grad, torch.full((3,), 18.0))


def test_sparse_conv_gradients_match_dense():
    x = _spikes((3, 40, 11), 0.1, seed=3).double()
    x[1, 7, 2] = 3.0
    w = torch.randn(5, 11, 6, dtype=torch.float64, requires_grad=True)
    b = torch.randn(5, dtype=torch.float64, requires_grad=True)
    g = torch.randn(3, 5, 40, dtype=torch.float64)
    gw_s, gb_s = torch.autograd.grad(sparse_causal_conv1d(x, w, b), (w, b), g)
    gw_d, gb_d = torch.autograd.grad(dense_causal_conv1d(x, w, b), (w, b), g)
    torch.testing.assert_close(gw_s, gw_d, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(gb_s, gb_d, rtol=1e-10, atol=1e-10)


def test_sparse_conv_gradcheck_including_input():
    x = _spikes((2, 12, 4), 0.2, seed=5).double().requires_grad_()
    w = torch.randn(3, 4, 5, dtype=torch.float64, requires_grad=True)
    b = torch.randn(3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda xx, ww, bb: sparse_causal_conv1d(xx, ww, bb), (x, w, b))


def test_sparse_events_and_module_modes():
    x = _spikes((2, 30, 6), 0.1, seed=7)
    ev = sparse_events(x)
    assert ev.nnz == int(x.sum()) and ev.values is None
    assert abs(ev.density - float(x.double().mean())) < 1e-12
    dense = SparseCausalConv1d(6, 4, 5, mode="dense")
    sparse = SparseCausalConv1d(6, 4, 5, mode="sparse")
    sparse.load_state_dict(dense.state_dict())
    assert not sparse.weight.is_contiguous() and sparse.weight.permute(1, 2, 0).is_contiguous()  # (in, K, out) memory
    torch.testing.assert_close(sparse(x), dense(x), rtol=1e-5, atol=1e-6)
    g = torch.randn(2, 4, 30)
    (sparse(x) * g).sum().backward()
    (dense(x) * g).sum().backward()
    torch.testing.assert_close(sparse.weight.grad, dense.weight.grad, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(sparse.bias.grad, dense.bias.grad, rtol=1e-5, atol=1e-5)
    assert sparse.weight.grad.stride() == sparse.weight.stride()  # gradient in the parameter's own layout
    with pytest.raises(ValueError):
        SparseCausalConv1d(6, 4, 5, mode="fast")
    with pytest.raises(ValueError, match="expected input"):
        dense(torch.zeros(1, 10, 7))


# --------------------------------------------------------------------------- TCN
@pytest.mark.parametrize("depth,width,kernels,n_in", [
    (1, 1, [80], 100), (1, 128, [43], 1278), (7, 128, [39] + [20] * 6, 1278), (8, 256, [33] * 8, 1278),
    (3, 8, [20, 20, 20], 30), (2, 4, [45, 1], 10)])
def test_parameter_count_and_receptive_field(depth, width, kernels, n_in):
    cfg = TCNConfig(n_inputs=n_in, depth=depth, width=width, kernels=kernels)
    with torch.device("meta"):  # shapes only: no memory, no initialisation cost
        model = TCN(cfg)
    assert cfg.n_parameters == sum(p.numel() for p in model.parameters())
    assert cfg.receptive_field == sum(k - 1 for k in kernels) + 1


def test_published_names_and_defaults():
    assert TCNConfig(depth=7, width=128).name == "TCN_7x128x153"
    assert TCNConfig(depth=1, width=128).name == "FCN_1x128x43"
    assert TCNConfig(depth=2, width=128, kernels=[45, 1]).name == "FCN_2x128x45"
    assert default_kernels(1) == [43] and default_kernels(3) == [39, 20, 20]
    # 7x128x153 with 1278 inputs: first layer 1278*128*39 weights dominate
    assert TCNConfig(depth=7, width=128).n_parameters == 8_348_802
    iaf = TCNConfig.iaf_network()
    assert iaf.n_parameters == 100 * 80 + 1 + 2 * 2 and iaf.receptive_field == 80 and not iaf.batchnorm


def test_config_errors_name_the_field():
    with pytest.raises(ConfigError, match="kernels"):
        TCNConfig(depth=3, kernels=[10, 10])
    with pytest.raises(ConfigError, match="width"):
        TCNConfig(depth=1, width=0)
    with pytest.raises(ConfigError, match="first_layer"):
        TCNConfig(depth=1, first_layer="magic")
    with pytest.raises(ValueError, match="unknown field"):
        TCNConfig.from_dict({"depth": 2, "bogus": 1})
    cfg = TCNConfig(n_inputs=10, depth=2, width=3, kernels=[5, 3])
    assert TCNConfig.from_json(cfg.to_json()) == cfg


def test_published_initialisation_and_bn_settings():
    torch.manual_seed(0)
    model = TCN(TCNConfig(n_inputs=50, depth=2, width=16, kernels=[10, 5]))
    assert float(model.spike_head.bias.detach()) == -2.0
    assert float(model.first.weight.detach().abs().max()) <= 2 * 0.002 + 1e-9  # truncated at 2 sd
    assert 0.0015 < float(model.first.weight.detach().std()) < 0.0025
    assert model.norms[0].eps == 1e-3 and model.norms[0].momentum == 0.01
    assert float(model.first.bias.detach().abs().sum()) == 0.0


def test_tcn_outputs_causal_and_sparse_equals_dense():
    torch.manual_seed(1)
    cfg = TCNConfig(n_inputs=12, depth=3, width=6, kernels=[5, 4, 3], n_dendritic_components=2,
                    first_layer="dense", kernel_init_std=0.5, spike_init_std=0.5, first_bias_init=0.2)
    model = TCN(cfg).eval()
    for bn in model.norms:  # non-trivial BN statistics
        bn.running_mean.uniform_(-0.1, 0.1)
        bn.running_var.uniform_(0.5, 2.0)
    x = _spikes((2, 60, 12), 0.1, seed=11)
    with torch.no_grad():
        out = model(x)
        assert out.spike_logits.shape == (2, 60) and out.soma.shape == (2, 60) and out.dvt.shape == (2, 60, 2)
        model.set_first_layer("sparse")
        out_s = model(x)
        torch.testing.assert_close(out_s.spike_logits, out.spike_logits, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(out_s.dvt, out.dvt, rtol=1e-5, atol=1e-6)
        model.double()
        x2 = x.double().clone()
        t0 = 30
        x2[:, t0, :] = 1 - x2[:, t0, :]
        ref = model(x.double()).spike_logits
        diff = (model(x2).spike_logits - ref).abs().amax(0)
    rf = cfg.receptive_field
    assert float(diff[:t0].max()) < 1e-12                  # nothing before the change
    assert float(diff[t0]) > 1e-3                          # the current ms counts
    assert float(diff[t0 + rf:].max()) < 1e-12             # nothing beyond the receptive field


def test_forward_long_chunks_are_exact():
    torch.manual_seed(2)
    model = TCN(TCNConfig(n_inputs=8, depth=2, width=5, kernels=[7, 4])).eval()
    x = _spikes((1, 500, 8), 0.05, seed=2).to(torch.uint8)
    a = forward_long(model, x, chunk_ms=10_000)
    b = forward_long(model, x, chunk_ms=37)
    np.testing.assert_allclose(a[0], b[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(a[1], b[1], rtol=1e-5, atol=1e-6)


def test_bf16_inference_is_close_to_fp32_and_heads_stay_float32():
    torch.manual_seed(3)
    model = TCN(TCNConfig(n_inputs=40, depth=3, width=16, kernels=[9, 5, 5])).eval()
    with torch.no_grad():  # weights of a trained size (the published init is too small to show rounding)
        for prm in model.parameters():
            prm.normal_(0.0, 0.3)
    x = _spikes((2, 300, 40), 0.05, seed=3).to(torch.uint8)
    with torch.no_grad():
        ref = model.infer(x, "fp32")
        low = model.infer(x, "bf16")
    assert low.spike_logits.dtype == torch.float32 and low.soma.dtype == torch.float32
    scale = float(ref.spike_logits.abs().max()) + 1e-6
    err = float((low.spike_logits - ref.spike_logits).abs().max())
    assert 0 < err < 0.05 * scale  # bf16 differs, but only by rounding
    lg32, _ = forward_long(model, x)
    lg16, _ = forward_long(model, x, precision="bf16")
    np.testing.assert_allclose(lg16, low.spike_logits.numpy(), rtol=1e-5, atol=1e-5)
    assert np.abs(lg16 - lg32).max() > 0
    with pytest.raises(ConfigError, match="precision"):
        model.infer(x, "fp8")


def test_forward_events_equals_dense_forward_with_repeats_chunks_and_batches():
    from neuroemu.models.emulator import forward_events
    from neuroemu.models.sparse_conv import SparseEvents

    torch.manual_seed(4)
    model = TCN(TCNConfig(n_inputs=12, depth=2, width=6, kernels=[9, 5])).eval()
    rng = np.random.default_rng(4)
    n = 400
    b, t, c = rng.integers(0, 3, n), rng.integers(0, 700, n), rng.integers(0, 12, n)  # repeats included
    ev = SparseEvents.from_indices(torch.as_tensor(b), torch.as_tensor(t), torch.as_tensor(c), 3, 700, 12)
    dense = ev.to_dense()
    assert float(dense.sum()) == n and float(dense.max()) >= 2
    ref = forward_long(model, dense)
    for chunk in (10_000, 53):
        got = forward_events(model, t, c, 700, batch_index=b, batch=3, chunk_ms=chunk)
        np.testing.assert_allclose(got[0], ref[0], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(got[1], ref[1], rtol=1e-5, atol=1e-5)
    model.set_first_layer("dense")  # a dense first layer takes events too
    np.testing.assert_allclose(model(ev).spike_logits.detach().numpy(), ref[0], rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="channels must lie"):
        SparseEvents.from_indices(torch.tensor([0]), torch.tensor([1]), torch.tensor([12]), 1, 10, 12)
    with pytest.raises(ValueError, match="equally long"):
        SparseEvents.from_indices(torch.tensor([0, 0]), torch.tensor([1]), torch.tensor([2]), 1, 10, 12)


# --------------------------------------------------------------------------- Emulator API
def _save_emulator(tmp_path, n_exc=6, n_inh=2):
    from neuroemu.models.checkpoint import RUN_FORMAT_VERSION, atomic_torch_save

    torch.manual_seed(0)
    cfg = TCNConfig(n_inputs=n_exc + n_inh, depth=2, width=4, kernels=[6, 3])
    model = TCN(cfg)
    path = tmp_path / "model.pt"
    atomic_torch_save({"format_version": RUN_FORMAT_VERSION, "model": model.state_dict(),
                       "model_config": cfg.to_dict(), "n_exc": n_exc, "n_inh": n_inh,
                       "soma_target": {"clip_mv": -55.0, "offset_mv": 67.7}, "step": 0}, path)
    return path, model


def test_emulator_predict_and_module(tmp_path):
    path, model = _save_emulator(tmp_path)
    emu = Emulator.load(path)
    inputs = InputSpikes(np.array([[0, 3], [5, 10], [1, 99]]), np.array([[1, 50]]))
    out = emu.predict(inputs)
    assert set(out) == {"spike_prob", "soma_v_pred_mv"}
    assert out["spike_prob"].shape == (100,) and out["spike_prob"].dtype == np.float32
    assert out["soma_v_pred_mv"].dtype == np.float32
    assert np.all((out["spike_prob"] > 0) & (out["spike_prob"] < 1))
    out2 = emu.predict(inputs, duration_ms=150)
    assert out2["spike_prob"].shape == (150,)
    np.testing.assert_allclose(out2["spike_prob"][:100], out["spike_prob"], rtol=1e-6)
    # the nn.Module on a (batch, time, channels) tensor gives the same numbers, in mV
    x = torch.from_numpy(inputs.dense(6, 0, 100, n_inh=2)).float().unsqueeze(0)
    with torch.no_grad():
        p, v = emu.module(x)
    np.testing.assert_allclose(p[0].numpy(), out["spike_prob"], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(v[0].numpy(), out["soma_v_pred_mv"], rtol=1e-5, atol=1e-4)
    model.eval()
    with torch.no_grad():
        raw = model(x)
    np.testing.assert_allclose(v[0].numpy(), (raw.soma[0] - 67.7).numpy(), rtol=1e-5, atol=1e-4)


def test_emulator_bad_inputs(tmp_path):
    path, _ = _save_emulator(tmp_path)
    emu = Emulator.load(path)
    with pytest.raises(InputSpikesError, match="channel 6"):
        emu.predict(InputSpikes(np.array([[6, 3]]), np.zeros((0, 2))))
    with pytest.raises(InputSpikesError, match="inh_spikes"):
        emu.predict(InputSpikes(np.array([[0, 3]]), np.array([[2, 5]])))
    with pytest.raises(InputSpikesError, match="beyond the trial duration"):
        emu.predict(InputSpikes(np.array([[0, 30]]), np.zeros((0, 2))), duration_ms=20)
    with pytest.raises(InputSpikesError, match="dense input"):
        emu.predict_dense(np.zeros((10, 9)))


def test_emulator_missing_or_corrupt_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        Emulator.load(tmp_path / "nothing.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"this is not a checkpoint")
    with pytest.raises(CheckpointError, match="corrupt"):
        Emulator.load(bad)
    path, _ = _save_emulator(tmp_path)
    data = path.read_bytes()
    trunc = tmp_path / "trunc.pt"
    trunc.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="trunc.pt"):
        Emulator.load(trunc)
    with pytest.raises(CheckpointError, match="run.json"):
        Emulator.load(tmp_path)  # a directory that is not a run


def test_sparse_conv_weight_gradient_keeps_the_event_layout():
    from neuroemu.models.sparse_conv import event_layout_weight

    x = _spikes((2, 50, 9), 0.1, seed=11)
    w = event_layout_weight(4, 9, 7).normal_().requires_grad_()
    sparse_causal_conv1d(x, w, None).sum().backward()
    assert w.grad.stride() == w.stride()  # (in, K, out) memory: no transposed copy per step
    ref = w.detach().clone().requires_grad_()
    dense_causal_conv1d(x, ref, None).sum().backward()
    torch.testing.assert_close(w.grad, ref.grad)
