"""The DMD2 / DFD math, pinned on cases computed by hand."""

import pytest
import torch

from engine.core import flow, timesteps
from engine.distill import losses


def _batch(seed=0, shape=(2, 3, 2, 2, 2)):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g)
    real = torch.randn(shape, generator=g)
    eps = torch.randn(shape, generator=g)
    t = torch.tensor([0.3, 0.8])
    return x, real, eps, t


class Recorder:
    """A stand-in network that records its inputs and returns a fixed x0 prediction."""

    def __init__(self, output):
        self.output, self.inputs = output, []

    def __call__(self, x_t, t):
        self.inputs.append((x_t.clone(), t.clone()))
        return self.output


def test_without_data_forcing_the_loss_is_exactly_dmd():
    x, real, eps, t = _batch()
    fake, teacher = Recorder(torch.zeros_like(x)), Recorder(torch.ones_like(x))
    terms = losses.generator_loss(x, real, eps, t, fake, teacher, data_forcing=False)
    assert torch.equal(teacher.inputs[0][0], losses.add_noise(x, eps, t))
    assert torch.equal(fake.inputs[0][0], losses.add_noise(x, eps, t))
    assert terms.loss == losses.dmd_loss(x, torch.zeros_like(x), torch.ones_like(x))
    assert not terms.data_forcing.any()


def test_dfd_feeds_real_video_to_teacher_with_same_noise_and_time():
    x, real, eps, t = _batch()
    fake, teacher = Recorder(torch.zeros_like(x)), Recorder(torch.ones_like(x))
    losses.generator_loss(x, real, eps, t, fake, teacher, data_forcing=True)
    assert torch.allclose(teacher.inputs[0][0], (1 - t.view(-1, 1, 1, 1, 1)) * real + t.view(-1, 1, 1, 1, 1) * eps)
    assert torch.equal(teacher.inputs[0][1], t)
    # the fake score still sees the student's own sample
    assert torch.equal(fake.inputs[0][0], losses.add_noise(x, eps, t))


def test_per_sample_forcing_mask_routes_only_the_chosen_samples():
    x, real, eps, t = _batch()
    teacher = Recorder(torch.ones_like(x))
    losses.generator_loss(
        x, real, eps, t, Recorder(torch.zeros_like(x)), teacher, data_forcing=torch.tensor([False, True])
    )
    seen = teacher.inputs[0][0]
    assert torch.equal(seen[0], losses.add_noise(x, eps, t)[0])
    assert torch.allclose(seen[1], (1 - t[1]) * real[1] + t[1] * eps[1])


def test_student_gradient_points_towards_teacher_and_away_from_fake_scaled_by_the_normalizer():
    x = torch.full((1, 1, 1, 1, 4), 2.0, requires_grad=True)
    fake_x0 = torch.full_like(x, 3.0).detach()
    teacher_x0 = torch.full_like(x, 1.0).detach()
    loss = losses.dmd_loss(x, fake_x0, teacher_x0)
    loss.backward()
    w = 1.0 / (abs(2.0 - 1.0) + 1e-6)  # mean |x - x0_teacher| = 1
    expected = (3.0 - 1.0) * w / x.numel()  # d/dx 0.5 * mean((x - (x - g))^2) = g / numel
    assert torch.allclose(x.grad, torch.full_like(x, expected))
    # a gradient step x - lr * grad moves x from 2 towards the teacher's 1, away from the fake's 3
    assert (x - 0.1 * x.grad).mean() < 2.0


def test_normalizer_uses_the_generated_sample_even_when_the_teacher_sees_real_data():
    x, real, eps, t = _batch()
    teacher_out = torch.full_like(x, 0.5)
    terms = losses.generator_loss(x, real, eps, t, Recorder(torch.zeros_like(x)), Recorder(teacher_out), True)
    w = 1.0 / ((x - teacher_out).abs().flatten(1).mean(1) + 1e-6)
    grad = (torch.zeros_like(x) - teacher_out) * w.view(-1, 1, 1, 1, 1)
    expected = 0.5 * (grad.double() ** 2).mean()
    assert torch.allclose(terms.loss, expected)


def test_validity_gap_is_the_mean_squared_distance_between_real_and_generated():
    x, real, eps, t = _batch()
    terms = losses.generator_loss(x, real, eps, t, Recorder(x), Recorder(x), False)
    assert torch.allclose(terms.real_gap, ((real - x) ** 2).flatten(1).mean(1))


class Network(torch.nn.Module):
    """A stand-in score network with a weight of its own, so a forward under autograd would put it (and
    its input) into the graph; it records whether autograd was on when it ran."""

    def __init__(self, scale):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.tensor(scale))
        self.grad_enabled = []

    def forward(self, x_t, t):
        self.grad_enabled.append(torch.is_grad_enabled())
        return x_t * self.weight + t.view(-1, 1, 1, 1, 1)


def _graph_leaves(tensor):
    """The leaf tensors a backward from `tensor` would write a .grad to."""
    leaves, seen, todo = [], set(), [tensor.grad_fn]
    while todo:
        node = todo.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        if hasattr(node, "variable"):
            leaves.append(node.variable)
        todo += [next_node for next_node, _ in node.next_functions]
    return leaves


@pytest.mark.parametrize("data_forcing", [False, True, torch.tensor([False, True])], ids=["dmd", "dfd", "mask"])
def test_only_the_student_sample_carries_gradient(data_forcing):
    x, real, eps, t = (v.clone().requires_grad_(True) for v in _batch())
    fake, teacher = Network(2.0), Network(3.0)
    terms = losses.generator_loss(x, real, eps, t, fake, teacher, data_forcing)
    assert [leaf is x for leaf in _graph_leaves(terms.loss)] == [True]
    terms.loss.backward()
    # nothing reaches the real batch, the noise, the time or either network's weights...
    assert real.grad is None and eps.grad is None and t.grad is None
    assert fake.weight.grad is None and teacher.weight.grad is None
    # ...both networks ran without building a graph (no activations kept for a backward)...
    assert fake.grad_enabled == [False] and teacher.grad_enabled == [False]
    # ...and the student's gradient is exactly DMD's, with both networks' outputs taken as constants
    with torch.no_grad():
        forcing = torch.as_tensor(data_forcing).expand(2).view(-1, 1, 1, 1, 1)
        x0_fake = fake(losses.add_noise(x, eps, t), t)
        x0_teacher = teacher(losses.add_noise(torch.where(forcing, real, x), eps, t), t)
        w = losses.dmd_normalizer(x, x0_teacher).view(-1, 1, 1, 1, 1)
        expected = ((x0_fake.double() - x0_teacher.double()) * w.double() / x.numel()).float()
    assert torch.allclose(x.grad, expected, rtol=1e-5, atol=0)
    assert x.grad.abs().sum() > 0


def test_the_logged_real_gap_holds_no_graph():
    x, real, eps, t = _batch()
    x.requires_grad_(True)  # as in training: only the student's sample is part of a graph
    terms = losses.generator_loss(x, real, eps, t, Network(2.0), Network(3.0), True)
    assert terms.real_gap.grad_fn is None and not terms.data_forcing.requires_grad


def test_cfg_and_x0_helpers():
    assert torch.equal(flow.guided(torch.tensor(2.0), torch.tensor(1.0), 5.0), torch.tensor(6.0))
    x_t, v, t = torch.tensor([[1.0]]), torch.tensor([[0.5]]), torch.tensor([0.4])
    assert torch.allclose(flow.x0_from_velocity(x_t, t, v), torch.tensor([[0.8]]))


def test_the_losses_and_the_samplers_share_one_copy_of_the_flow_arithmetic():
    from engine.generation import causal_sampling, sampling

    for name in ("add_noise", "x0_from_velocity"):
        assert getattr(losses, name) is getattr(sampling, name) is getattr(causal_sampling, name) is getattr(flow, name)
    assert losses.shifted_time is flow.shifted_time


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_a_number_a_0d_tensor_and_a_per_sample_time_give_the_same_bits(dtype):
    x, _, eps, _ = _batch()
    x, eps, v = x.to(dtype), eps.to(dtype), (eps - x).to(dtype)
    per_sample = flow.add_noise(x, eps, torch.tensor([0.624, 0.624]))
    assert torch.equal(flow.add_noise(x, eps, 0.624), per_sample)
    assert torch.equal(flow.add_noise(x, eps, torch.tensor(0.624)), per_sample)
    assert torch.equal(flow.x0_from_velocity(x, 0.624, v), flow.x0_from_velocity(x, torch.tensor([0.624] * 2), v))
    assert flow.add_noise(x, eps, 0.624).dtype == dtype


def test_cfg_in_velocity_space_is_cfg_in_x0_space():
    """x0 = x_t - t v is affine in v, so guiding the velocities and then taking x0 (what the trainer's teacher and
    the sampler do) equals guiding the two x0 predictions (FastGen's x0-space convention)."""
    x_t, v_cond, v_uncond, t = *_batch(seed=1)[:3], torch.tensor([0.3, 0.8])
    for guidance in (1.0, 3.0, 5.0):
        in_velocity = flow.x0_from_velocity(x_t, t, flow.guided(v_cond, v_uncond, guidance))
        in_x0 = flow.guided(flow.x0_from_velocity(x_t, t, v_cond), flow.x0_from_velocity(x_t, t, v_uncond), guidance)
        assert torch.allclose(in_velocity, in_x0, rtol=0, atol=1e-5)
    with torch.no_grad():  # exact in float64: the two differ only by rounding
        x64, c64, u64, t64 = x_t.double(), v_cond.double(), v_uncond.double(), t.double()
        a = flow.x0_from_velocity(x64, t64, flow.guided(c64, u64, 5.0))
        b = flow.guided(flow.x0_from_velocity(x64, t64, c64), flow.x0_from_velocity(x64, t64, u64), 5.0)
        assert torch.allclose(a, b, rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    "t_list,ok",
    [
        ([0.999, 0.937, 0.833, 0.624, 0.0], True),
        ([1.0, 0.0], True),
        ([0.5, 0.9, 0.0], False),
        ([0.9, 0.5], False),
        ([0.0], False),
        ([1.2, 0.5, 0.0], False),
        ([0.9, 0.9, 0.0], False),
    ],
)
def test_the_config_and_the_samplers_accept_the_same_t_lists(t_list, ok):
    from engine.config.distill import DistillConfig
    from engine.config.fields import ConfigError
    from engine.generation import sampling

    assert (timesteps.t_list_problem(t_list) is None) == ok
    config_refuses = sampler_refuses = False
    try:
        DistillConfig(t_list=t_list)._check_schedule()
    except ConfigError as err:
        config_refuses = "t_list" in str(err)
    try:
        sampling.student_sample(None, torch.zeros(1, 1, 1, 1, 1), torch.zeros(1, 1, 1), tuple(t_list))
    except ValueError as err:
        sampler_refuses = str(err).startswith("t_list must decrease strictly")
    except TypeError:  # past the check: the stand-in network (None) was called
        pass
    assert config_refuses == sampler_refuses == (not ok)


def test_fake_score_loss_is_zero_at_the_true_velocity():
    x, _, eps, _ = _batch()
    assert losses.fake_score_loss(eps - x, x, eps) == 0


def test_shifted_time_is_monotone_bounded_and_the_identity_at_shift_one():
    u = torch.linspace(0, 1, 101)
    t = losses.shifted_time(u, 5.0)
    assert (t[1:] >= t[:-1]).all() and t.min() >= 0.001 and t.max() <= 0.999
    assert t[50] > 0.8  # shift 5 puts the median noise time at 5/6
    assert torch.allclose(losses.shifted_time(u, 1.0, 0.0, 1.0), u)


# --- variants beyond the paper's one line (docs/method.md, "Variants") ------------------------------------


def test_blend_weight_targets_the_weighted_mix_of_the_teacher_on_sample_and_on_real():
    x, real, eps, t = _batch()

    def teacher(x_t, tt):  # a linear "teacher", so the mix of its outputs can be checked by hand
        return 2.0 * x_t

    w = torch.tensor([0.25, 0.25])
    terms = losses.generator_loss(x, real, eps, t, lambda x_t, tt: torch.zeros_like(x), teacher, data_forcing=w)
    target = 0.75 * teacher(losses.add_noise(x, eps, t), t) + 0.25 * teacher(losses.add_noise(real, eps, t), t)
    assert torch.allclose(terms.loss, losses.dmd_loss(x, torch.zeros_like(x), target))
    assert torch.equal(terms.data_forcing, w)
    coin = losses.generator_loss(x, real, eps, t, lambda x_t, tt: torch.zeros_like(x), teacher, data_forcing=True)
    assert not torch.allclose(coin.loss, terms.loss)  # a weight of 1 is the coin, 0.25 is not


def test_a_zero_blend_weight_or_a_lost_coin_is_exactly_dmd():
    x, real, eps, t = _batch()
    teacher = Recorder(torch.ones_like(x))
    terms = losses.generator_loss(x, real, eps, t, Recorder(torch.zeros_like(x)), teacher, data_forcing=torch.zeros(2))
    assert len(teacher.inputs) == 1 and torch.equal(teacher.inputs[0][0], losses.add_noise(x, eps, t))
    assert terms.loss == losses.dmd_loss(x, torch.zeros_like(x), torch.ones_like(x))


@pytest.mark.parametrize(
    "schedule, expected", [("constant", [0.5, 0.5, 0.5]), ("decay", [0.5, 0.25, 0.0]), ("rise", [0.0, 0.25, 0.5])]
)
def test_p_schedules_run_linearly_between_p_and_zero(schedule, expected):
    assert [losses.scheduled_prob(0.5, schedule, u) for u in (0.0, 0.5, 1.0)] == expected
    with pytest.raises(ValueError, match="unknown data-forcing schedule 'cosine'"):
        losses.scheduled_prob(0.5, "cosine", 0.5)


def test_forcing_weight_is_the_coin_or_p_and_zero_below_t_min():
    t = torch.tensor([0.2, 0.6, 0.9])
    u = torch.tensor([0.1, 0.1, 0.7])
    assert losses.forcing_weight(u, 0.5, t, 0.0, blend=False).tolist() == [1.0, 1.0, 0.0]
    assert losses.forcing_weight(u, 0.5, t, 0.5, blend=False).tolist() == [0.0, 1.0, 0.0]  # routing
    assert losses.forcing_weight(u, 0.5, t, 0.5, blend=True).tolist() == [0.0, 0.5, 0.5]


class _Cfg:
    def __init__(self, **kw):
        self.__dict__.update(
            dict(
                method="dfd",
                data_forcing_prob=0.5,
                data_forcing_schedule="constant",
                data_forcing_granularity="step",
                data_forcing_blend=False,
                dfd_t_min=0.0,
                steps=100,
            ),
            **kw,
        )


def test_the_papers_coin_is_one_draw_per_update_shared_by_the_batch():
    import numpy as np

    rng, twin = np.random.default_rng(7), np.random.default_rng(7)
    draw = losses.DataForcing.of(_Cfg(), 0, rng)
    assert draw.step_uniform == twin.random()  # exactly one uniform, as the paper's coin
    u = draw.uniforms(rng, 4)
    assert torch.equal(u, torch.full((4,), draw.step_uniform, dtype=torch.float64))
    assert rng.random() == twin.random()  # the batch drew nothing more
    dmd2 = losses.DataForcing.of(_Cfg(method="dmd2"), 0, rng)
    assert rng.random() == twin.random() and not dmd2.weight(torch.rand(4), dmd2.uniforms(rng, 4)).any()


def test_per_sample_coins_differ_within_a_batch_and_follow_the_schedule():
    import numpy as np

    rng = np.random.default_rng(0)
    draw = losses.DataForcing.of(_Cfg(data_forcing_granularity="sample", data_forcing_schedule="decay"), 50, rng)
    assert draw.data_forcing_prob == 0.25 and draw.step_uniform is None
    w = draw.weight(torch.full((4000,), 0.5), draw.uniforms(rng, 4000))
    assert set(w.unique().tolist()) == {0.0, 1.0} and abs(float(w.mean()) - 0.25) < 0.03
    blend = losses.DataForcing.of(_Cfg(data_forcing_blend=True), 0, rng)
    assert blend.weight(torch.full((3,), 0.5), blend.uniforms(rng, 3)).tolist() == [0.5, 0.5, 0.5]
