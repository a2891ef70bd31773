"""Short experiments on the shipped teacher's weak point (shape fidelity), kept so the figures in
docs/results.md ("Teacher: what did not move shape") can be re-measured. Not part of the product: nothing
here is shipped. Run alone on the 2-core CPU (each takes 5-15 minutes).

    python scripts/teacher_pilot.py train VARIANT STEPS OUT [--lr 3e-4] [--lr-schedule constant|cosine]
            [--seed 1] [--warmup-steps 100] [--pool-clips 16000] [--only-shape SHAPE]
        VARIANT: same (continue as is), ffnN (FFN widened to N, function-preserving: the new hidden
        units start with zero output weights), patch1 (1x1x1 tokens over the 8x8-pixel latent cells
        instead of 1x2x2: 4x the tokens; patch embedding and output head folded from the 2x2 ones).
        --only-shape: every training clip has that shape (can the network learn to draw it at all?)
    python scripts/teacher_pilot.py shapes [BASE] [--png OUT.png]
        what the teacher draws for each shape ("a red SHAPE moving left on a dark background", 16 seeds)
        without guidance (CFG 1: what it learned) and at the shipped CFG 5, as the recognizer reads it
    python scripts/teacher_pilot.py sampler [BASE]
        teacher@50 fidelity on the detailed prompts under other scheduler shifts, CFG and step counts
    python scripts/teacher_pilot.py sdedit [BASE] [--from 0.3,0.5,0.7,0.85,0.95,1]
        where shape is lost: real clips of each detailed caption noised to level t, then the teacher's
        remaining 50-step CFG-5 Euler steps from there (t = 1 is plain sampling)

Both print attribute accuracy of 8 seeds on each of the 10 detailed prompts (the recognizer's reading).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.evaluation import metrics
from engine.shapes import teacher, world  # noqa: E402
from engine.evaluation.evaluate import evaluate  # noqa: E402


def grown(old, variant: str):
    """A WanTransformer3DModel of the changed config, carrying over every weight that still fits."""
    from diffusers import WanTransformer3DModel

    config = {k: v for k, v in old.config.items() if not k.startswith("_")}
    if variant == "same":
        return old
    if variant.startswith("ffn"):
        config["ffn_dim"] = int(variant[3:])
    elif variant == "patch1":
        config["patch_size"] = (1, 1, 1)
    else:
        raise SystemExit(f"unknown variant {variant!r}: same, ffnN or patch1")
    new = WanTransformer3DModel(**config)
    state = new.state_dict()
    for key, value in old.state_dict().items():
        if state[key].shape == value.shape:
            state[key] = value
        elif key.endswith(("ffn.net.0.proj.weight", "ffn.net.0.proj.bias")):
            state[key][: value.shape[0]] = value  # the new hidden units keep their random input weights...
        elif key.endswith("ffn.net.2.weight"):
            state[key].zero_()  # ...and start with zero output: the grown model computes what the old one did
            state[key][:, : value.shape[1]] = value
        elif key == "patch_embedding.weight":
            state[key] = value.sum(dim=(3, 4), keepdim=True)  # a cell embeds as a 2x2 patch of itself would
        elif key == "proj_out.weight":
            state[key] = value.reshape(4, -1, value.shape[1]).mean(0)  # outputs are ordered (p_h, p_w, channel)
        elif key == "proj_out.bias":
            state[key] = value.reshape(4, -1).mean(0)
        else:
            raise KeyError(key)
    new.load_state_dict(state)
    return new


def train(args) -> None:
    load = teacher._continued_pipeline

    def continued_and_grown(cfg):
        pipe, lineage = load(cfg)
        pipe.transformer = grown(pipe.transformer, args.variant)
        return pipe, lineage

    teacher._continued_pipeline = continued_and_grown  # pretrain_teacher's own loop, on the changed network
    if args.only_shape:
        draw = world.draw_factors

        def one_shape(rng, named=None):
            return draw(rng, {**(named or {}), "shape": args.only_shape})

        world.draw_factors = one_shape  # the pool; captions still name the shape at the usual rates
    cfg = teacher.TeacherConfig(steps=args.steps, seed=args.seed, lr=args.lr, lr_schedule=args.lr_schedule,
                                warmup_steps=args.warmup_steps, init=args.init, pool_clips=args.pool_clips)
    started = time.time()

    def progress(step, total, loss):
        if step % 50 == 0:
            print(f"step {step}/{total} loss {loss:.4f} {time.time() - started:.0f} s", flush=True)

    teacher.pretrain_teacher(cfg, Path(args.out), command=f"scripts/teacher_pilot.py train {args.variant}",
                             progress=progress)
    entry = evaluate(["teacher@50"], "detailed", 8, base=args.out)["models"]["teacher@50"]
    print(json.dumps({"variant": args.variant, "steps": args.steps, "train_s": round(time.time() - started),
                      "prompt_fidelity": entry["prompt_fidelity"], "factor_accuracy": entry["factor_accuracy"],
                      "saturation_error": entry["saturation_error"], "sharpness_ratio": entry["sharpness_ratio"]}))


def shapes(args) -> None:
    from collections import Counter

    from PIL import Image

    from engine.generation.generate import SampleConfig, sample_frames
    from engine.models.base import load_base_model
    from engine.shapes.recognizer import Recognizer

    model, recognizer, rows = load_base_model(args.base), Recognizer(), []
    for shape in world.SHAPES:
        prompt = world.caption({"shape": shape, "colour": "red", "motion": "left", "background": "dark"})
        for guidance in (1.0, 5.0):
            cfg = SampleConfig(base=args.base, prompt=prompt, seeds=list(range(16)), steps=50, guidance=guidance)
            clips = sample_frames(model, cfg.validate())[0]
            read = Counter(p["shape"] for p in recognizer.predict(clips)[0])
            print(json.dumps({"shape": shape, "cfg": guidance, "read_as": dict(read.most_common())}), flush=True)
            rows.append(np.concatenate(list(clips[:, world.NUM_FRAMES // 2]), axis=1))  # middle frames
    if args.png:
        Image.fromarray(np.concatenate(rows)).save(args.png)


def _mean_accuracy(per_prompt: list[dict[str, float]]) -> dict[str, float]:
    """Each factor's accuracy averaged over the prompts."""
    return {k: round(float(np.mean([a[k] for a in per_prompt])), 3) for k in per_prompt[0]}


def sampler(args) -> None:
    from diffusers import FlowMatchEulerDiscreteScheduler

    from engine.generation.generate import SampleConfig, sample_frames
    from engine.models.base import load_base_model
    from engine.shapes.recognizer import Recognizer

    model, recognizer = load_base_model(args.base), Recognizer()
    shipped = model.pipe.scheduler.config
    for shift, guidance, steps in [(3, 5, 50), (1, 5, 50), (6, 5, 50), (3, 8, 50), (3, 5, 100)]:
        model.pipe.scheduler = FlowMatchEulerDiscreteScheduler.from_config(shipped, shift=float(shift))
        accuracy = []
        for prompt in world.prompt_set("detailed"):
            cfg = SampleConfig(base=args.base, prompt=prompt, seeds=list(range(1, 9)), steps=steps, guidance=guidance)
            predicted, _ = recognizer.predict(sample_frames(model, cfg.validate())[0])
            accuracy.append(metrics.attribute_accuracy(world.parse_caption(prompt), predicted))
        factors = _mean_accuracy(accuracy)
        print(json.dumps({"shift": shift, "cfg": guidance, "steps": steps, "factor_accuracy": factors,
                          "prompt_fidelity": round(float(np.mean(list(factors.values()))), 4)}), flush=True)


def sdedit(args) -> None:
    from engine.generation import sampling
    from engine.models.base import load_base_model
    from engine.shapes.recognizer import DEFAULT_DIR, Recognizer

    model, recognizer = load_base_model(args.base), Recognizer(args.recognizer or DEFAULT_DIR)
    sigmas = sampling.teacher_sigmas(model.pipe.scheduler, 50)
    seeds = list(range(1, 9))
    uncond = model.encode_prompts([""]).expand(len(seeds), -1, -1)
    for level in [float(x) for x in args.levels.split(",")]:
        start = min(range(len(sigmas)), key=lambda i: abs(sigmas[i] - level))  # nearest step of the schedule
        accuracy = []
        for k, prompt in enumerate(world.prompt_set("detailed")):
            named = world.parse_caption(prompt)
            clips, _ = world.sample_clips(named, len(seeds), seed=100 + k)
            x0 = model.encode_video(clips)
            x = sampling.add_noise(x0, sampling.seeded_noise(x0.shape, seeds, x0.device, x0.dtype), sigmas[start])
            cond = model.encode_prompts([prompt]).expand(len(seeds), -1, -1)
            # teacher_sample starts from noise * sigmas[0]; handing it x / sigma starts it exactly at x.
            x = sampling.teacher_sample(model.transformer, x / sigmas[start], cond, uncond, sigmas[start:], 5.0)
            accuracy.append(metrics.attribute_accuracy(named, recognizer.predict(model.decode(x))[0]))
        factors = _mean_accuracy(accuracy)
        print(json.dumps({"from_t": round(sigmas[start], 3), "steps": len(sigmas) - 1 - start,
                          "factor_accuracy": factors}), flush=True)


def main() -> None:
    torch.set_num_threads(2)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("train", help="continue the teacher with a changed network, then measure it")
    p.add_argument("variant")
    p.add_argument("steps", type=int)
    p.add_argument("out")
    p.add_argument("--init", default="engine/assets/shapes-tiny")
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--lr-schedule", default="constant", choices=["constant", "cosine"])
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--warmup-steps", type=int, default=100)
    p.add_argument("--pool-clips", type=int, default=16000)
    p.add_argument("--only-shape", choices=list(world.SHAPES), default=None)
    p.set_defaults(run=train)
    p = sub.add_parser("shapes", help="what the teacher draws for each shape, with and without guidance")
    p.add_argument("base", nargs="?", default="shapes-tiny")
    p.add_argument("--png", default=None, help="write the middle frames, two rows per shape, here")
    p.set_defaults(run=shapes)
    p = sub.add_parser("sampler", help="the shipped teacher under other sampler settings")
    p.add_argument("base", nargs="?", default="shapes-tiny")
    p.set_defaults(run=sampler)
    p = sub.add_parser("sdedit", help="from which noise level the teacher keeps a real clip's shape")
    p.add_argument("base", nargs="?", default="shapes-tiny")
    p.add_argument("--from", dest="levels", default="0.3,0.5,0.7,0.85,0.95,1")
    p.add_argument("--recognizer", default=None, help="recognizer folder (default: the shipped one)")
    p.set_defaults(run=sdedit)
    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
