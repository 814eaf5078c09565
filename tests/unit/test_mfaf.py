"""gao2023's MFAF: shapes, ONNX, learning, the distillation loss by hand, ablation options and band influence."""

import csv
import math

import numpy as np
import onnxruntime as ort
import pytest
import torch
from deepprospect.core.errors import InputError
from deepprospect.models.mfaf import (
    DEFAULT_RATES,
    MFAF,
    TABLE6_RATES,
    band_influence,
    distillation_loss,
    fuse,
    write_band_influence,
)
from deepprospect.models.onnx_io import export_onnx, make_card, read_card
from deepprospect.models.training import TrainSettings, apply_preset, save_model, split_data, train_model
from deepprospect.models.zoo import SeedAverage, architecture_options, build_model
from model_factory import randomised
from torch import nn
from training_factory import BANDS, easy_set

NAMES = ["mfaf_resnet18", "mfaf_shufflenet_v2"]
FAST = {"rates": [1, 2]}  # two branches: distillation and fusion at a fraction of five branches' cost


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def fit(name, options, n, batch, epochs, lr):
    settings = TrainSettings(architecture=name, options=options, epochs=epochs, batch_size=batch, learning_rate=lr,
                             min_learning_rate=1e-4, early_stopping="off", device="cpu", seed=1)
    training_set = easy_set(n=n)
    return training_set, train_model(training_set, settings)


@pytest.fixture(scope="module")
def trained():
    """MFAF-ShuffleNetV2 (two branches) trained on the easy set: (training set, result)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield fit("mfaf_shufflenet_v2", FAST, 160, 8, 6, 3e-3)
    torch.set_num_threads(threads)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("bands,patch,rates", [(1, 16, DEFAULT_RATES), (4, 16, (1, 2, 4)), (10, 32, (3,))])
def test_branch_logits_in_training_fused_log_probabilities_in_eval(name, bands, patch, rates):
    model = build_model(name, bands, patch, rates=list(rates))
    x = torch.randn(3, bands, patch, patch)
    assert model(x).shape == (3, len(rates), 2)
    model.eval()
    with torch.no_grad():
        fused = model(x)
        assert fused.shape == (3, 2)
        torch.testing.assert_close(fused.exp().sum(1), torch.ones(3))
        branches = model.head.classifier(model.features(x).flatten(0, 1)).reshape(3, len(rates), 2)
        torch.testing.assert_close(fused.exp(), torch.softmax(branches, -1).mean(1), rtol=1e-5, atol=1e-6)
        assert model.band_attention(x).shape == (3, len(rates), bands)


def test_vote_fusion_is_the_share_of_branch_votes():
    logits = torch.tensor([[[2.0, 1.0], [0.0, 3.0], [1.0, 1.0]]])  # votes: class 0, class 1, a tie (half each)
    torch.testing.assert_close(fuse(logits, "vote"), torch.tensor([[0.5, 0.5]]))
    torch.testing.assert_close(fuse(logits[:, :2], "vote"), torch.tensor([[0.5, 0.5]]))
    torch.testing.assert_close(fuse(logits[:, :1], "vote"), torch.tensor([[1.0, 0.0]]))
    torch.testing.assert_close(fuse(logits, "mean"), torch.softmax(logits, -1).mean(1))


@pytest.mark.parametrize("name,options", [("mfaf_resnet18", {"fusion": "vote"}),
                                          ("mfaf_shufflenet_v2", {"channel_attention": False, "rates": [1, 8]}),
                                          ("mfaf_resnet18", {"spatial_attention": False, "rates": [2, 4, 6]})])
def test_onnx_export_equals_torch(tmp_path, name, options):
    model = randomised(build_model(name, 3, 16, seed=1, **options)).eval()
    card = make_card(name, ["a", "b", "c"], {}, 16, (100.0, 100.0), "EPSG:32650", options=options)
    path = str(tmp_path / "mfaf.onnx")
    export_onnx(model, path, card, 3, 16)
    x = torch.randn(5, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = model(x).numpy()
    (actual,) = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, {"input": x.numpy()})
    assert actual.shape == (5, 2)
    if options.get("fusion") == "vote":  # shares of three votes
        assert set(np.round(np.exp(expected), 4).ravel()) <= {0.0, 0.3333, 0.6667, 1.0}
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-4)
    assert read_card(path)["options"] == options


def test_loss_is_summed_cross_entropy_plus_beta_times_distillation_to_the_mean():
    logits = torch.tensor([[[2.0, -1.0], [0.5, 0.5], [-1.0, 1.0]],
                           [[0.0, 1.0], [1.5, 0.0], [0.2, 0.1]]])  # 2 samples, 3 branches, 2 classes
    y = torch.tensor([0, 1])
    z = logits.numpy().astype(np.float64)
    p = np.exp(z) / np.exp(z).sum(-1, keepdims=True)
    cross_entropy = sum(-np.log(p[i, k, y[i]]) for i in range(2) for k in range(3)) / 2  # mean over the batch
    mean = p.mean(1)
    kl = sum(float(np.sum(mean[i] * (np.log(mean[i]) - np.log(p[i, k])))) for i in range(2) for k in range(3)) / 2
    assert kl > 0.05
    criterion = nn.CrossEntropyLoss()
    for beta in (0.0, 0.4, 0.8):
        loss = distillation_loss(logits, y, criterion, beta)
        assert float(loss) == pytest.approx(cross_entropy + beta * kl, rel=1e-6)
    model = build_model("mfaf_shufflenet_v2", 2, 16, beta=0.4, rates=[1, 2, 3])
    assert float(model.training_loss(logits, y, criterion)) == pytest.approx(cross_entropy + 0.4 * kl, rel=1e-6)
    weighted = nn.CrossEntropyLoss(weight=torch.tensor([1.0, 3.0]))
    expected = sum(float(weighted(logits[:, k], y)) for k in range(3)) + 0.4 * kl
    assert float(distillation_loss(logits, y, weighted, 0.4)) == pytest.approx(expected, rel=1e-6)
    # the teacher (the branches' mean) is held fixed: each branch's gradient is the cross-entropy's plus
    # beta · (p_k − p̄) / batch, its pull toward the mean
    leaf = logits.clone().requires_grad_()
    distillation_loss(leaf, y, criterion, 0.4).backward()
    mean_t = torch.softmax(logits, -1).mean(1, keepdim=True)
    ce_grad = (torch.softmax(logits, -1) - nn.functional.one_hot(y, 2)[:, None]) / 2
    kl_grad = 0.4 * (torch.softmax(logits, -1) - mean_t) / 2
    torch.testing.assert_close(leaf.grad, ce_grad + kl_grad)


def test_ablation_options_change_the_network():
    full = build_model("mfaf_resnet18", 4, 16)
    assert architecture_options("mfaf_resnet18") == {"rates": DEFAULT_RATES, "beta": 0.4, "channel_attention": True,
                                                     "spatial_attention": True, "fusion": "mean"}
    assert full.rates == DEFAULT_RATES and full.beta == 0.4
    dilations = [branch[0].dilation for branch in full.features.scales]
    assert dilations == [(r, r) for r in DEFAULT_RATES]
    assert all(branch[0].groups == 4 for branch in full.features.scales)  # depthwise: one filter per band
    assert full.features.channel_attention.mlp[0].in_features == 5 * 4  # bands × scales
    assert full.features.spatial_attention.conv.kernel_size == (7, 7)
    no_ca = build_model("mfaf_resnet18", 4, 16, channel_attention=False)
    no_sa = build_model("mfaf_resnet18", 4, 16, spatial_attention=False)
    assert no_ca.features.channel_attention is None and no_ca.band_attention(torch.zeros(1, 4, 16, 16)) is None
    assert no_sa.features.spatial_attention is None
    count = lambda model: sum(p.numel() for p in model.parameters())  # noqa: E731
    assert count(no_ca) < count(full) and count(no_sa) == count(full) - 2 * 7 * 7
    for rates in TABLE6_RATES:
        model = build_model("mfaf_shufflenet_v2", 4, 16, rates=list(rates))
        assert [b[0].dilation[0] for b in model.features.scales] == list(rates)
    # the trunk and the head are shared: more branches add only their 3×3 depthwise filters, batch norm and
    # the attention's wider MLP
    three = build_model("mfaf_resnet18", 4, 16, rates=[1, 2, 3], channel_attention=False)
    assert count(no_ca) - count(three) == 2 * (4 * 9 + 2 * 4)
    vote = build_model("mfaf_resnet18", 4, 16, fusion="vote")
    assert vote.head.fusion == "vote" and full.head.fusion == "mean"


@pytest.mark.parametrize("options,message", [
    ({"rates": [0, 6]}, r"rates must be whole numbers of at least 1 .*not \[0, 6\]"),
    ({"rates": [1, 6.5]}, "rates must be whole numbers"),
    ({"rates": "wide"}, "rates must be whole numbers"),
    ({"rates": []}, "rates must be whole numbers"),
    ({"rates": [1, 6, 6]}, r"rates \[1, 6, 6\] repeat a rate"),
    ({"beta": -0.1}, r"beta \(self-distillation weight\) must be a number of at least 0"),
    ({"beta": True}, "beta"),
    ({"beta": "high"}, "beta"),
    ({"channel_attention": "maybe"}, "channel_attention must be true or false, not 'maybe'"),
    ({"spatial_attention": 1}, "spatial_attention must be true or false"),
    ({"fusion": "max"}, "fusion must be one of mean, vote, not 'max'"),
    ({"dilation": 2}, r"MFAF \(ResNet18\) has no option dilation; its options: rates"),
])
def test_bad_options_are_named(options, message):
    with pytest.raises(InputError, match=message):
        build_model("mfaf_resnet18", 3, 16, **options)


def test_a_single_rate_is_accepted():
    model = build_model("mfaf_shufflenet_v2", 3, 16, rates=12)
    assert model.rates == (12,) and model(torch.randn(2, 3, 16, 16)).shape == (2, 1, 2)


@pytest.mark.parametrize("options", [{}, {"channel_attention": False}, {"spatial_attention": False}])
def test_shufflenet_variants_learn_the_easy_set(trained, options):
    _, result = trained if not options else fit("mfaf_shufflenet_v2", {**FAST, **options}, 160, 8, 6, 3e-3)
    assert result.metrics["validation"]["auc"] >= 0.9 and result.metrics["test"]["auc"] >= 0.9
    assert (result.band_influence is None) == (options == {"channel_attention": False})


def test_resnet18_variant_learns_the_easy_set():
    _, result = fit("mfaf_resnet18", FAST, 60, 8, 4, 1e-3)
    assert result.metrics["validation"]["auc"] >= 0.9 and result.metrics["test"]["auc"] >= 0.9


def test_vote_of_the_trained_branches_classifies_the_easy_set(trained):
    training_set, result = trained
    model = result.model
    test = split_data(training_set, "patch", 0)["test"]
    x, y = test.inputs(slice(None)), test.y.numpy()
    model.head.fusion = "vote"
    try:
        with torch.no_grad():
            share = model(x).exp()[:, 1].numpy()
    finally:
        model.head.fusion = "mean"
    assert set(np.round(share, 6)) <= {0.0, 0.5, 1.0}
    assert np.mean((share >= 0.5) == y) >= 0.9


def test_band_influence_reaches_the_card_and_the_csv(trained, tmp_path):
    training_set, result = trained
    train = split_data(training_set, "patch", 0)["train"]
    with torch.no_grad():
        expected = result.model.band_attention(train.inputs(slice(None))).mean((0, 1)).numpy()
    assert list(result.band_influence) == BANDS
    np.testing.assert_allclose(list(result.band_influence.values()), expected, rtol=1e-5)
    assert all(0.0 < weight < 1.0 for weight in expected)
    card = save_model(result, training_set, str(tmp_path / "mfaf.onnx"))
    stored = read_card(str(tmp_path / "mfaf.onnx"))
    assert stored["extra"]["band_influence"] == card["extra"]["band_influence"] == result.band_influence
    assert stored["architecture"] == "mfaf_shufflenet_v2" and stored["options"] == FAST
    # the saved model file predicts what the trained torch model does
    test = split_data(training_set, "patch", 0)["test"]
    x = test.inputs(slice(None))
    with torch.no_grad():
        torch_logits = result.model(x).numpy()
    session = ort.InferenceSession(str(tmp_path / "mfaf.onnx"), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run(None, {"input": x.numpy()})[0], torch_logits, rtol=1e-4, atol=1e-4)
    write_band_influence(result.band_influence, str(tmp_path / "influence.csv"))
    with open(tmp_path / "influence.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["band"] for row in rows] == BANDS
    assert [float(row["weight"]) for row in rows] == pytest.approx(expected, abs=1e-6)
    assert sorted(int(row["rank"]) for row in rows) == [1, 2, 3]
    assert rows[int(np.argmax(expected))]["rank"] == "1"


def test_band_influence_of_other_models_and_seed_ensembles():
    x = [torch.randn(4, 3, 16, 16)]
    assert band_influence(build_model("resnet18", 3, 16), x, BANDS) is None
    assert band_influence(build_model("mfaf_resnet18", 3, 16, channel_attention=False), x, BANDS) is None
    members = [build_model("mfaf_shufflenet_v2", 3, 16, seed=seed, **FAST).eval() for seed in (0, 1)]
    alone = [band_influence(member, x, BANDS) for member in members]
    both = band_influence(SeedAverage(members), x, BANDS)
    for band in BANDS:
        assert both[band] == pytest.approx((alone[0][band] + alone[1][band]) / 2)
    assert not math.isclose(alone[0]["Au"], alone[1]["Au"])


def test_gao2023_preset_sets_the_papers_settings_and_keeps_given_options():
    settings = apply_preset(TrainSettings(), "gao2023")
    assert settings.architecture == "mfaf_resnet18"
    assert settings.options == {"rates": [1, 6, 12, 18, 24], "beta": 0.4}
    assert (settings.optimiser, settings.momentum, settings.weight_decay) == ("sgd", 0.2, 1e-4)
    assert (settings.learning_rate, settings.schedule, settings.step_epochs, settings.step_factor) == (
        0.02, "step", 30, 0.6)
    assert (settings.batch_size, settings.epochs, settings.early_stopping) == (32, 220, "off")
    sweep = apply_preset(TrainSettings(architecture="mfaf_resnet18", options={"beta": 0.1}), "gao2023")
    assert sweep.options == {"rates": [1, 6, 12, 18, 24], "beta": 0.1}
    assert isinstance(build_model(sweep.architecture, 3, 16, **sweep.options), MFAF)
