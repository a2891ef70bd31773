"""Is the reader right about generated clips? The shipped recognizer's accuracy on real clips of the shapes
world degraded the ways samples differ from them: blurred or sharpened to the sharpness students measure
(0.5x to 2.5x that of real clips through the autoencoder), JPEG-blocked, and saturated or desaturated.

Every fidelity figure of the study is the recognizer's reading, and its held-out accuracy (1.0) was only
measured on real and autoencoded clips. If its accuracy falls on degraded real clips, where the truth is
known, part of a model's fidelity loss at that sharpness or saturation may be the reader's, not the model's.
Clips are drawn with every factor uniform (world.uniform_naming), so rare shapes and colours are read as
often as common ones; sharpness targets are set against the same clips through the autoencoder.

A second reader shares nothing with the recognizer: it fits the world's own shape masks to the object's
mask (template_shape). On generated clips, where the truth is unknown, the two are compared with the
prompt's named shape and with each other: where they disagree, a fidelity figure is a reading as much as
a measurement.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from ..models.base import load_base_model
from ..shapes import world
from ..shapes.recognizer import Recognizer
from . import metrics
from .continuous_factors import object_mask
from .evaluate import Session
from .reference import through_decoder
from .settings import EvalSettings
from .specs import ModelSpec

SHARPNESS_RATIOS = (0.5, 0.75, 1.0, 1.5, 2.0, 2.5)  # of decoded real: the range students and teachers show
JPEG_QUALITIES = (50, 20, 10, 5)
SATURATION_FACTORS = (0.5, 0.75, 1.25, 1.5, 2.0)
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def uniform_clips(n: int, seed: int) -> tuple[np.ndarray, list[world.ClipFactors]]:
    """n real clips whose discrete factors are each drawn uniformly (a full naming per clip)."""
    rng = np.random.default_rng(seed)
    factors = [world.draw_factors(rng, world.uniform_naming(rng)) for _ in range(n)]
    return np.stack([world.render(f) for f in factors]), factors


def _gaussian_kernel(sigma: float) -> np.ndarray:
    radius = max(1, int(np.ceil(3 * sigma)))
    x = np.arange(-radius, radius + 1, dtype=np.float32)
    k = np.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


def _blur_float(clips: np.ndarray, sigma: float) -> np.ndarray:
    """Spatial Gaussian blur of (..., H, W, 3) frames, edge pixels repeated; float32 out."""
    x = clips.astype(np.float32)
    k = _gaussian_kernel(sigma)
    r = len(k) // 2
    for axis in (-3, -2):  # H, then W
        pad = [(0, 0)] * x.ndim
        pad[x.ndim + axis] = (r, r)
        padded = np.pad(x, pad, mode="edge")
        size = x.shape[axis]
        x = sum(w * np.take(padded, np.arange(i, i + size), axis=axis) for i, w in enumerate(k))
    return x


def blur(clips: np.ndarray, sigma: float) -> np.ndarray:
    """uint8 clips blurred by a Gaussian of `sigma` pixels, frame by frame."""
    return np.clip(np.round(_blur_float(clips, sigma)), 0, 255).astype(np.uint8)


def sharpen(clips: np.ndarray, amount: float, sigma: float = 1.0) -> np.ndarray:
    """Unsharp masking: clips + amount * (clips - blur(clips)), clipped to uint8 (edges overshoot: ringing,
    as over-sharp samples show)."""
    x = clips.astype(np.float32)
    return np.clip(np.round(x + amount * (x - _blur_float(clips, sigma))), 0, 255).astype(np.uint8)


def jpeg(clips: np.ndarray, quality: int) -> np.ndarray:
    """Every frame through a JPEG encoder at `quality` (8x8 blocking, chroma subsampling)."""
    out = np.empty_like(clips)
    for idx in np.ndindex(clips.shape[:-3]):
        buf = io.BytesIO()
        Image.fromarray(clips[idx]).save(buf, "JPEG", quality=int(quality))
        buf.seek(0)
        out[idx] = np.asarray(Image.open(buf).convert("RGB"))
    return out


def saturate(clips: np.ndarray, factor: float) -> np.ndarray:
    """Colour pushed away from (factor > 1) or toward (< 1) each pixel's grey of the same luminance."""
    x = clips.astype(np.float32)
    lum = (x @ _LUMA)[..., None]
    return np.clip(np.round(lum + factor * (x - lum)), 0, 255).astype(np.uint8)


def match_sharpness(clips: np.ndarray, target: float, probe: int = 32) -> tuple[np.ndarray, str]:
    """The clips blurred (or sharpened) until their sharpness is `target`: bisection on sigma (or the
    unsharp amount) over the first `probe` clips. Returns the clips and the setting in words."""
    sample = clips[:probe]
    base = metrics.sharpness(sample)
    if abs(target - base) <= 1e-3 * base:
        return clips, "as rendered"
    down = target < base
    lo, hi = (0.05, 8.0) if down else (0.0, 30.0)
    for _ in range(30):
        mid = 0.5 * (lo + hi)
        s = metrics.sharpness(blur(sample, mid) if down else sharpen(sample, mid))
        if (s > target) == down:
            lo = mid
        else:
            hi = mid
    value = 0.5 * (lo + hi)
    return (
        (blur(clips, value), f"blur sigma {value:.2f} px")
        if down
        else (sharpen(clips, value), f"unsharp amount {value:.2f}")
    )


TEMPLATE_FRAMES = (0, 4, 8, 12, 16)  # frames the template reader looks at
_RADII = np.arange(world.RADIUS_RANGE[0] - 2.0, world.RADIUS_RANGE[1] + 2.5, 0.5)


def _templates() -> dict[str, list[tuple[np.ndarray, float, float]]]:
    """Per shape and radius: the world's own coverage mask on a grid centred at 0, and its centroid."""
    span = np.arange(-40, 41, dtype=np.float32)
    ys, xs = np.meshgrid(span, span, indexing="ij")
    out = {}
    for shape in world.SHAPES:
        out[shape] = []
        for r in _RADII:
            mask = world._coverage(shape, xs, ys, float(r)) > 0.5
            out[shape].append((mask, float(xs[mask].mean()), float(ys[mask].mean())))
    return out


def template_shape(clip: np.ndarray, templates=None) -> tuple[str, float]:
    """A second reader, independent of the recognizer: the shape whose own mask (any radius, placed on the
    object's centroid) best overlaps the object's mask, by IoU summed over TEMPLATE_FRAMES. Returns the shape
    and its mean IoU."""
    templates = templates or _templates()
    score = dict.fromkeys(world.SHAPES, 0.0)
    frames = [i for i in TEMPLATE_FRAMES if i < len(clip)]
    for i in frames:
        mask = object_mask(clip[i])
        if not mask.any():
            continue
        ys, xs = np.nonzero(mask)
        cy, cx = ys.mean(), xs.mean()
        for shape, options in templates.items():
            best = 0.0
            for tmask, tx, ty in options:
                oy, ox = int(round(cy - ty)) - 40, int(round(cx - tx)) - 40  # template origin on the frame
                placed = np.zeros_like(mask)
                y0, x0 = max(oy, 0), max(ox, 0)
                y1, x1 = min(oy + tmask.shape[0], mask.shape[0]), min(ox + tmask.shape[1], mask.shape[1])
                if y1 <= y0 or x1 <= x0:
                    continue
                placed[y0:y1, x0:x1] = tmask[y0 - oy : y1 - oy, x0 - ox : x1 - ox]
                best = max(best, float((placed & mask).sum() / max((placed | mask).sum(), 1)))
            score[shape] += best
    shape = max(score, key=score.get)
    return shape, round(score[shape] / max(len(frames), 1), 4)


def accuracy(predicted: list[dict[str, str]], factors: list[world.ClipFactors]) -> dict:
    """Per-factor accuracy, all four right, and the worst-read shape (its accuracy and name)."""
    truth = [f.discrete() for f in factors]
    out = {
        name: round(float(np.mean([p[name] == t[name] for p, t in zip(predicted, truth)])), 4)
        for name in world.FACTOR_NAMES
    }
    out["all_four"] = round(float(np.mean([p == t for p, t in zip(predicted, truth)])), 4)
    by_shape = {s: [p["shape"] == s for p, t in zip(predicted, truth) if t["shape"] == s] for s in world.SHAPES}
    worst = min((s for s in by_shape if by_shape[s]), key=lambda s: np.mean(by_shape[s]))
    out["worst_shape"] = [worst, round(float(np.mean(by_shape[worst])), 4)]
    return out


def conditions(real: np.ndarray, decoded: np.ndarray) -> list[tuple[str, str, np.ndarray]]:
    """(kind, setting, clips) of every condition: real, decoded, real and decoded clips blurred or sharpened
    to each SHARPNESS_RATIOS of decoded real, JPEG-blocked and saturation-shifted real clips."""
    out = [("real", "as rendered", real), ("decoded", "autoencoder round trip", decoded)]
    target = metrics.sharpness(decoded[: min(32, len(decoded))])
    for name, source in (("real", real), ("decoded", decoded)):  # samples are decoded too: both starting points
        for ratio in SHARPNESS_RATIOS:
            if name == "decoded" and ratio == 1.0:
                continue  # the decoded row itself
            clips, how = match_sharpness(source, ratio * target)
            out.append((f"{name} at {ratio:g}x decoded sharpness", how, clips))
    out += [(f"JPEG q{q}", "every frame", jpeg(real, q)) for q in JPEG_QUALITIES]
    out += [(f"saturation x{f:g}", "chroma about luminance", saturate(real, f)) for f in SATURATION_FACTORS]
    return out


def run(n: int = 256, seed: int = 0, base: str = "shapes-tiny", progress=print) -> dict:
    """Both readers' accuracy on n uniform real clips under every condition; the JSON the script writes."""
    real, factors = uniform_clips(n, seed)
    decoded = through_decoder(load_base_model(base, device="cpu"), real)
    reader, templates = Recognizer(), _templates()
    real_sharp, decoded_sharp = metrics.sharpness(real), metrics.sharpness(decoded)
    real_sat = metrics.colour_stats(real)["saturation"]
    rows = []
    for kind, how, clips in conditions(real, decoded):
        predicted, _ = reader.predict(clips)
        second = [template_shape(c, templates)[0] for c in clips]
        row = {
            "condition": kind,
            "setting": how,
            "sharpness_vs_decoded": round(metrics.sharpness(clips) / decoded_sharp, 3),
            "saturation_vs_real": round(metrics.colour_stats(clips)["saturation"] / real_sat, 3),
            **accuracy(predicted, factors),
            "template_shape": round(float(np.mean([t == f.shape for t, f in zip(second, factors)])), 4),
            "readers_agree": round(float(np.mean([t == p["shape"] for t, p in zip(second, predicted)])), 4),
        }
        rows.append(row)
        progress(f"{kind}: shape {row['shape']}, template {row['template_shape']}, all four {row['all_four']}")
    return {
        "clips": n,
        "seed": seed,
        "base": base,
        "real_sharpness": round(real_sharp, 3),
        "decoded_sharpness": round(decoded_sharp, 3),
        "rows": rows,
    }


def generated(
    models: list[str], prompts: str = "detailed", seeds: int = 8, base: str = "shapes-tiny", progress=print
) -> list[dict]:
    """Where the two readers disagree on generated clips: per model, over a prompt set's clips, the share
    whose named shape each reader finds, and the share on which they agree. The truth of a generated clip
    is unknown; the prompt's named shape is what it should show."""
    session = Session(EvalSettings(models=models, prompts=prompts, seeds=seeds, base=base, device="cpu"), True)
    session.load(True)
    templates, out = _templates(), []
    for name in models:
        spec = ModelSpec.parse(name)
        named = recog = templ = agree = total = 0
        sharp, fit = [], []
        for prompt in world.prompt_set(prompts):
            shape = world.parse_caption(prompt).get("shape")
            clips, _, _ = session.sample(spec, prompt, list(range(1, seeds + 1)))
            predicted, _ = session.recognizer.predict(clips)
            read = [template_shape(c, templates) for c in clips]
            second = [r[0] for r in read]
            fit += [r[1] for r in read]
            sharp.append(metrics.sharpness(clips))
            total += len(clips)
            agree += sum(t == p["shape"] for t, p in zip(second, predicted))
            if shape:
                named += len(clips)
                recog += sum(p["shape"] == shape for p in predicted)
                templ += sum(t == shape for t in second)
        row = {
            "model": name,
            "prompts": prompts,
            "clips": total,
            "sharpness": round(float(np.mean(sharp)), 3),
            "recognizer_named_shape": round(recog / max(named, 1), 4),
            "template_named_shape": round(templ / max(named, 1), 4),
            "readers_agree": round(agree / total, 4),
            "template_iou": round(float(np.mean(fit)), 4),
        }
        out.append(row)
        progress(
            f"{name}: recognizer {row['recognizer_named_shape']}, template {row['template_named_shape']}, "
            f"agree {row['readers_agree']}"
        )
    return out


def to_markdown(result: dict) -> str:
    """The table of docs/results.md's "Is the reader right?"."""
    head = [
        "condition",
        "setting",
        "sharpness / decoded",
        "saturation / real",
        *world.FACTOR_NAMES,
        "all four",
        "worst shape",
        "template reader: shape",
        "readers agree on shape",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in result["rows"]:
        cells = [
            r["condition"],
            r["setting"],
            f"{r['sharpness_vs_decoded']:.2f}",
            f"{r['saturation_vs_real']:.2f}",
            *(f"{r[name]:.3f}" for name in world.FACTOR_NAMES),
            f"{r['all_four']:.3f}",
            f"{r['worst_shape'][0]} {r['worst_shape'][1]:.3f}",
            f"{r.get('template_shape', float('nan')):.3f}",
            f"{r.get('readers_agree', float('nan')):.3f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    if result.get("generated"):
        lines += [
            "",
            "| model | prompts | clips | sharpness | recognizer: named shape | template: named shape | "
            "readers agree | template's mean IoU |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for g in result["generated"]:
            lines.append(
                f"| {g['model']} | {g['prompts']} | {g['clips']} | {g['sharpness']:.2f} | "
                f"{g['recognizer_named_shape']:.3f} | {g['template_named_shape']:.3f} | "
                f"{g['readers_agree']:.3f} | {g['template_iou']:.3f} |"
            )
    return "\n".join(lines) + "\n"
