"""Block swap on a tiny random Wan transformer with the trainer's LoRA adapters, on the CPU (onload device =
offload device = cpu: the hooks run, the weights are copied in and dropped, only the link is missing): the
hooks fire in order, one block at a time, the backward of a checkpointed block finds its weights, and the
adapters' gradients are those of a run without the option."""

from __future__ import annotations

import pytest
import torch

from engine.distill.adapters import FAKE, STUDENT, Adapters
from engine.distill.block_swap import BlockSwap
from tiny_wan import tiny_transformer


def _network(checkpointing=True):
    torch.manual_seed(0)
    net = tiny_transformer(num_layers=4)
    adapters = Adapters(net, rank=4)
    for p in adapters.parameters(STUDENT) + adapters.parameters(FAKE):  # non-zero B: every LoRA weight gets a grad
        torch.nn.init.normal_(p, std=0.1)
    adapters.use(STUDENT)
    if checkpointing:
        net.enable_gradient_checkpointing()
    return net, adapters


def _student_grads(net, adapters):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(1, 4, 3, 8, 8, generator=g)
    cond = torch.randn(1, 6, 32, generator=g)
    with torch.no_grad():  # a no-grad pass first (the teacher's), then the trained one
        net(x, torch.tensor([500.0]), cond, return_dict=False)
    out = net(x, torch.tensor([700.0]), cond, return_dict=False)[0]
    out.square().mean().backward()
    return {i: p.grad.clone() for i, p in enumerate(adapters.parameters(STUDENT))}


def test_lora_gradients_are_identical_with_and_without_block_swap():
    plain = _student_grads(*_network())
    net, adapters = _network()
    swap = BlockSwap(net, 3, "cpu", record=True)
    swapped = _student_grads(net, adapters)
    assert plain.keys() == swapped.keys()
    for i in plain:
        assert torch.equal(plain[i], swapped[i]), i
    # no-grad forward 1,2,3; checkpointed forward 1,2,3; backward recomputes 3 (still there), then 2 and 1:
    # each swapped block comes in at its forward and leaves when the next swapped block comes.
    loads = [i for kind, i in swap.events if kind == "onload"]
    assert loads == [1, 2, 3, 1, 2, 3, 2, 1], swap.events
    for before, after in zip(swap.events, swap.events[1:]):
        if after[0] == "onload":
            assert before[0] == "offload" or before == swap.events[0], swap.events  # never two blocks at once
    block = sum(m.numel() * m.element_size() for _, m in swap.masters[1])
    assert swap.loaded_bytes == 8 * block and swap.swapped_bytes() == 3 * block


def test_offloaded_weights_are_empty_and_the_adapters_stay():
    net, adapters = _network()
    lora_before = [p.data_ptr() for p in adapters.parameters(STUDENT)]
    swap = BlockSwap(net, 2, "cpu")
    for i in (2, 3):
        frozen = [p for n, p in net.blocks[i].named_parameters() if "lora_" not in n]
        assert frozen and all(p.numel() == 0 for p in frozen)
    assert all(p.numel() > 0 for n, p in net.blocks[1].named_parameters())  # a block not swapped stays whole
    assert [p.data_ptr() for p in adapters.parameters(STUDENT)] == lora_before  # LoRA tensors never move
    _student_grads(net, adapters)
    assert swap.resident == 2  # the last block the backward recomputed
    swap.remove()
    assert all(p.numel() > 0 for p in net.parameters())


def test_a_backward_that_reads_an_offloaded_weight_fails_loudly():
    """Without gradient checkpointing the forward keeps each block's weights for the backward; by then the
    swapped blocks are offloaded, and the backward fails rather than reading anything stale (the config
    refuses block_swap without gradient checkpointing)."""
    net, adapters = _network(checkpointing=False)
    BlockSwap(net, 2, "cpu")
    with pytest.raises(RuntimeError):
        _student_grads(net, adapters)


def test_more_blocks_than_the_base_has_is_refused_by_name():
    net, _ = _network()
    with pytest.raises(ValueError, match="block_swap 5: this base has 4 transformer blocks"):
        BlockSwap(net, 5, "cpu")


def test_a_real_run_with_block_swap_trains_the_same_student(tmp_path, mini_teacher_dir):
    """The trainer on the shapes world, gradient checkpointing on, with and without one block swapped: the
    same student LoRA, tensor for tensor (both processes on the CPU; only where the weights sit differs)."""
    from engine.config.distill import DistillConfig
    from engine.distill.trainer import Distiller
    from trainer_helpers import student_tensors

    students = []
    for swap in (0, 1):
        cfg = DistillConfig(
            base=str(mini_teacher_dir),
            steps=2,
            batch_size=2,
            student_update_freq=2,
            lora_rank=4,
            shapes_pool_clips=16,
            gradient_checkpointing=True,
            block_swap=swap,
        ).validate()
        distiller = Distiller(cfg, tmp_path / f"run{swap}")
        out = distiller.train()
        students.append(student_tensors(out))
        if swap:
            assert distiller.block_swap.loaded_bytes > 0
    assert students[0].keys() == students[1].keys()
    for name in students[0]:
        assert torch.equal(students[0][name], students[1][name]), name
